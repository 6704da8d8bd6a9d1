from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import path, re_path

from jobs.consumers import JobConsumer


class NotFoundConsumer(AsyncWebsocketConsumer):
    """Every other path: refused at the handshake (403), where Channels would raise for no route (500)."""

    async def connect(self):
        await self.close()


websocket_urlpatterns = [
    path("ws/jobs/<uuid:job_id>/", JobConsumer.as_asgi()),
    re_path(r"", NotFoundConsumer.as_asgi()),
]
