"""Progress events pushed to a job's Channels group (relayed by JobConsumer)."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def push(job, event: dict) -> None:
    """Best effort: a browser missing an event catches up from the API; the pipeline goes on."""
    try:
        async_to_sync(get_channel_layer().group_send)(job.group_name, {"type": "job.event", "event": event})
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
