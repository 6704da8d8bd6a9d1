"""The job progress websocket: owner or staff only; a snapshot, then the collector's events.

Access is checked at connect and again while the socket is open (``jobs.access``): before an
event is relayed or a snapshot sent once WEBSOCKET_ACCESS_CHECK_SECONDS have passed since the
last check, and every WEBSOCKET_ACCESS_CHECK_SECONDS however quiet the job. A socket whose
access ended is closed with the reason's code.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.db import DatabaseError

from . import access
from .events import snapshot
from .models import Job

logger = logging.getLogger(__name__)

SNAPSHOT_REQUEST = {"type": "snapshot"}
# A snapshot reads every finished tile; one socket asking in a loop gets at most one a second.
SNAPSHOT_INTERVAL_SECONDS = 1.0


class JobConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.job = await self._visible_job(self.scope["url_route"]["kwargs"]["job_id"])
        if self.job is None:
            await self.close()  # before accept: the handshake is refused with 403
            return
        # Join the group before reading the snapshot: a tile that finishes meanwhile is then in
        # the snapshot, in the live events, or in both (the client dedupes), never in neither.
        await self.channel_layer.group_add(self.job.group_name, self.channel_name)
        await self.accept()
        self.last_snapshot = float("-inf")
        self.checked, self.closed = time.monotonic(), False
        self.watch = asyncio.create_task(self.watch_access())
        await self.send_snapshot()

    async def disconnect(self, code):
        if getattr(self, "job", None) is not None:
            self.watch.cancel()
            await self.channel_layer.group_discard(self.job.group_name, self.channel_name)

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        """The one request a client makes: a fresh snapshot, once it has seen a gap in the events."""
        if asks_for_snapshot(text_data) and await self.allowed():
            await self.send_snapshot()

    async def job_event(self, message):
        if await self.allowed():
            await self.send_json(message["event"])

    async def allowed(self) -> bool:
        """May the user still watch? Asked again once WEBSOCKET_ACCESS_CHECK_SECONDS have passed
        since the last time; if not, the socket is closed with the reason's code."""
        if self.closed or time.monotonic() - self.checked < settings.WEBSOCKET_ACCESS_CHECK_SECONDS:
            return not self.closed
        self.checked = time.monotonic()
        session = self.scope.get("session")
        key = session.session_key if session is not None else None
        code = await database_sync_to_async(access.ended)(self.scope["user"], key, self.job.pk)
        if code is not None:
            await self.end(code)
        return code is None

    async def watch_access(self) -> None:
        """However quiet the job, access is asked again every WEBSOCKET_ACCESS_CHECK_SECONDS."""
        while not self.closed:
            await asyncio.sleep(self.checked + settings.WEBSOCKET_ACCESS_CHECK_SECONDS - time.monotonic())
            try:
                await self.allowed()
            except DatabaseError as exc:  # asked again next round; the socket stays meanwhile
                logger.warning("could not check access to job %s: %s", self.job.pk, exc)

    async def end(self, code: int) -> None:
        self.closed = True
        await self.close(code=code)

    async def send_snapshot(self):
        await asyncio.sleep(self.last_snapshot + SNAPSHOT_INTERVAL_SECONDS - time.monotonic())
        self.last_snapshot = time.monotonic()
        state = await database_sync_to_async(snapshot)(self.job.pk)
        if state is None:
            await self.end(access.JOB_GONE)
        else:
            await self.send_json(state)

    @classmethod
    async def encode_json(cls, content):
        return json.dumps(content, separators=(",", ":"))  # a 16k-tile snapshot is ~20% smaller

    @database_sync_to_async
    def _visible_job(self, job_id):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return None
        return Job.objects.visible_to(user).filter(pk=job_id).first()


def asks_for_snapshot(text: str | None) -> bool:
    # Short messages only: nothing a client may send is worth parsing at length or depth.
    if not text or len(text) > 100:
        return False
    try:
        return json.loads(text) == SNAPSHOT_REQUEST
    except ValueError:
        return False
