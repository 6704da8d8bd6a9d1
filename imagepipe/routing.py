from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import path, re_path

from jobs.consumers import JobConsumer


class NotFoundConsumer(AsyncWebsocketConsumer):
    """Every other path: refused at the handshake (403), where Channels would raise for no route (500)."""

    async def connect(self):
        await self.close()


# django-stubs' path() and re_path() take views; Channels routes ASGI applications with them too.
websocket_urlpatterns = [
    path("ws/jobs/<uuid:job_id>/", JobConsumer.as_asgi()),  # type: ignore[arg-type]
    re_path(r"", NotFoundConsumer.as_asgi()),  # type: ignore[arg-type]
]
