"""The job progress websocket: owner or staff only; relays the collector's events."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from .models import Job


class JobConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.job = await self._visible_job(self.scope["url_route"]["kwargs"]["job_id"])
        if self.job is None:
            await self.close()  # before accept: the handshake is refused with 403
            return
        await self.channel_layer.group_add(self.job.group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if getattr(self, "job", None) is not None:
            await self.channel_layer.group_discard(self.job.group_name, self.channel_name)

    async def job_event(self, message):
        await self.send_json(message["event"])

    @database_sync_to_async
    def _visible_job(self, job_id):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return None
        return Job.objects.visible_to(user).filter(pk=job_id).first()
