"""The websocket's messages: events pushed to a job's Channels group (relayed by JobConsumer),
and the snapshot a socket gets when it opens or asks to re-sync."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from functools import cache

from channels.layers import get_channel_layer
from django.db import connection, transaction

from imagepipe.core.tiling import Box

from .models import Job, Tile

logger = logging.getLogger(__name__)

# One row per tile in a snapshot: arrays, not dicts, so 16k tiles stay a few hundred KB.
# "state" is an index into Tile.State's values, "worker" one into the snapshot's "workers" (None before a
# worker has it); left/top/width/height is where the mosaic draws the tile on its stage's canvas.
TILE_FIELDS = (
    "stage", "index", "left", "top", "width", "height", "state", "worker", "attempts", "duration_ms"
)  # fmt: skip
STATES = tuple(Tile.State.values)
# What the snapshot reads of each tile.
SNAPSHOT_COLUMNS = (
    "stage", "index", "x", "y", "width", "height", "state", "worker", "attempts",
    "duration_ms",
)  # fmt: skip


@cache
def _loop() -> asyncio.AbstractEventLoop:
    # One loop for the life of the process, so channels_redis keeps its connection
    # pool between events (async_to_sync would start a fresh loop, and a fresh
    # Redis connection, for every tile).
    return asyncio.new_event_loop()


def push(job, event: dict) -> None:
    push_all(job, [event])


def push_all(job, events: list[dict]) -> None:
    """Best effort: a client that misses an event sees the gap in tiles_done and asks for a snapshot.
    Several events go out in one run of the loop, on the connections it keeps."""
    if not events:
        return
    try:
        _loop().run_until_complete(_send_all(job.group_name, events))
    except Exception:
        logger.warning("could not push %d events for job %s", len(events), job.pk, exc_info=True)


async def _send_all(group: str, events: list[dict]) -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer is configured (CHANNEL_LAYERS)")
    for event in events:  # in order: a page reads a gap in tiles_done as a missed event
        await layer.group_send(group, {"type": "job.event", "event": event})


def push_sent(job: Job, tiles: list[tuple[int, int]]) -> None:
    """Tell the job's watchers which tiles just went to the workers: (index, times sent), more
    than once when recovery sent one again."""
    push(job, {"type": "sent", "stage": job.stage, "tiles": [list(tile) for tile in tiles]})


def push_status(job) -> None:
    push(job, status_event(job))


def status_event(job: Job) -> dict:
    return {
        "type": "status",
        "status": job.status,
        "error": job.error,
        "stage": job.stage,
        "tiles_done": job.tiles_done,
        "tiles_total": job.tiles_total,
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "timings": job.timings(),
        "phase": job.phase,
        "viewer": job.viewer,
    }


def snapshot(job_id) -> dict | None:
    """The job as it stands, with every tile of every stage and what became of it: two queries
    whatever the tile count.

    Both read one snapshot of the database (repeatable read), so the counts and the tiles agree
    even while the collector records more between the two queries; they take the tables in the
    order every transaction does (``jobs.models``).
    """
    outermost = not connection.in_atomic_block  # inside another transaction it can't be set
    with transaction.atomic(savepoint=False):
        if outermost:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        tiles = list(
            Tile.objects.filter(job_id=job_id).order_by("stage", "index").values_list(*SNAPSHOT_COLUMNS)
        )
        job = Job.objects.defer("icc_profile").filter(pk=job_id).first()
        if job is None:
            return None
    workers: dict[str, int] = {}  # name -> its index in "workers", filled as tiles name them
    rows = [_row(job, tile, workers) for tile in tiles]
    return {
        **status_event(job),
        "type": "snapshot",
        "canvases": [job.canvas(stage) for stage in range(len(job.stages))],
        "workers": list(workers),
        "tile_states": STATES,
        "tile_fields": TILE_FIELDS,
        "tiles": rows,
    }


def _row(job: Job, tile: tuple, workers: dict[str, int]) -> list:
    """One tile, read as SNAPSHOT_COLUMNS (tuples, not models: a 16k-tile job's in a tenth of the
    time), as TILE_FIELDS."""
    stage, index, x, y, width, height, state, worker, attempts, duration_ms = tile
    box = job.placed(stage, Box(x, y, x + width, y + height))
    number = workers.setdefault(worker, len(workers)) if worker else None
    place = [box.left, box.top, box.width, box.height]
    return [stage, index, *place, STATES.index(state), number, attempts, duration_ms]


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
