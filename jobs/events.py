"""Progress events pushed to a job's Channels group (relayed by JobConsumer)."""

from __future__ import annotations

import asyncio
import logging
from functools import cache

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


@cache
def _loop() -> asyncio.AbstractEventLoop:
    # One loop for the life of the process, so channels_redis keeps its connection
    # pool between events (async_to_sync would start a fresh loop, and a fresh
    # Redis connection, for every tile).
    return asyncio.new_event_loop()


def push(job, event: dict) -> None:
    """Best effort: a browser missing an event catches up from the API; the pipeline goes on."""
    try:
        send = get_channel_layer().group_send(job.group_name, {"type": "job.event", "event": event})
        _loop().run_until_complete(send)
    except Exception:
        logger.warning("could not push %s event for job %s", event.get("type"), job.pk, exc_info=True)


def push_status(job) -> None:
    push(
        job,
        {
            "type": "status",
            "status": job.status,
            "error": job.error,
            "tiles_done": job.tiles_done,
            "tiles_total": job.tiles_total,
        },
    )
