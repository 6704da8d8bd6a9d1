"""Turning finished tiles into images: the next stage's input, or the job's result.

Stage images are rebuilt from the stored tiles, so a collector that stops
between stages, or mid-assembly, picks up where it left off (``resume``).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import InterfaceError, OperationalError
from django.db.models import Max
from django.utils import timezone
from PIL import Image

from imagepipe.core import statistics
from imagepipe.core.chain import colour_bands, global_table
from imagepipe.core.codec import decode_tile
from imagepipe.core.operations import chain_output_mode
from imagepipe.core.output import FORMATS, encode
from imagepipe.core.pipeline import assemble, leading_table, output_size

from . import previews
from .dispatch import publish_stage
from .events import push_status
from .models import Job, Tile
from .uploads import open_image

logger = logging.getLogger(__name__)


def store_tile(tile: Tile, pixels: bytes) -> str:
    name = f"tiles/{tile.job_id}/{tile.stage}-{tile.index}.tile"
    default_storage.delete(name)  # an earlier, uncounted attempt may have written it
    return default_storage.save(name, ContentFile(pixels))


def stage_image(job: Job, stage: int) -> Image.Image:
    """A finished stage's output, pasted together from its stored tiles."""
    steps, size = job.stages[stage], job.stage_size(stage)
    mode = chain_output_mode(job.mode, [s for earlier in job.stages[: stage + 1] for s in earlier])
    tiles = job.tiles.filter(stage=stage).only("stage", "x", "y", "width", "height", "result")
    return assemble(output_size(steps, size), mode, ((job.placed_box(tile), _read(tile)) for tile in tiles))


def _read(tile: Tile) -> Image.Image:
    with default_storage.open(tile.result.name, "rb") as handle:
        return decode_tile(handle.read())


def next_stage_input(job: Job, finished: int) -> tuple[Image.Image, list[int]]:
    """The image the next stage cuts its tiles from, and its global step's table.

    The table comes from the sum of the histograms the finished stage's tiles
    reported: the whole image's statistics without reading the whole image.
    """
    image = stage_image(job, finished)
    stats = statistics.add(job.tiles.filter(stage=finished).values_list("stats", flat=True))
    return image, global_table(job.stages[finished + 1][0], stats, colour_bands(image).mode)


def advance_stage(job: Job, finished: int) -> None:
    """Dispatch the next stage once ``finished`` is complete (only one caller wins)."""
    if not job.claim_next_stage(finished):
        return
    dispatch_stage(job, finished + 1)


def stage_input(job: Job, stage: int) -> tuple[Image.Image, list[int] | None]:
    """What a stage's tiles are cut from: the stored original for stage 0, else the previous stage."""
    if stage:
        return next_stage_input(job, stage - 1)
    with job.original.open("rb") as original:
        image, _ = open_image(original)
    return image, leading_table(job.stages[0], image)


def dispatch_stage(job: Job, stage: int, only: set[int] | None = None) -> None:
    try:
        image, table = stage_input(job, stage)
    except Exception as exc:
        logger.exception("preparing stage %d of job %s failed", stage, job.pk)
        job.fail(f"preparing stage {stage} failed: {exc}")
        push_status(job)
        return
    publish_stage(job, image, stage, table, only)
    logger.info("job %s: stage %d of %d dispatched", job.pk, stage, job.last_stage)


def assemble_job(job: Job) -> None:
    """Build, store and publish the result once every tile is in (only one caller wins)."""
    if not job.claim_assembly():
        return
    push_status(job)
    try:
        name = _store_result(job)
    except (OperationalError, InterfaceError):
        raise  # the database, not the job: the collector retries
    except Exception as exc:
        logger.exception("assembling job %s failed", job.pk)
        job.fail(f"assembling the result failed: {exc}")
    else:
        job.finish(name)
        logger.info("job %s done: %s", job.pk, name)
        _discard_tiles(job)
    push_status(job)


def _store_result(job: Job) -> str:
    data = encode(
        stage_image(job, job.last_stage),
        job.output_format,
        job.output_quality,
        bytes(job.icc_profile) or None,
        settings.RESULT_PNG_COMPRESS_LEVEL,
    )
    name = f"results/{job.pk}{FORMATS[job.output_format].extension}"
    default_storage.delete(name)
    return default_storage.save(name, ContentFile(data))


def _discard_tiles(job: Job) -> None:
    """The stored result now holds every tile's pixels; the tile files can go."""
    for name in job.tiles.exclude(result="").values_list("result", flat=True):
        default_storage.delete(name)


def retry(job: Job) -> bool:
    """Put a failed or cancelled job back to work, re-running only the tiles not done."""
    if not job.reopen():
        return False
    if job.tiles_done == job.tiles_total:
        assemble_job(job)
    else:
        pending = job.tiles.filter(stage=job.stage, status=Tile.Status.PENDING)
        dispatch_stage(job, job.stage, set(pending.values_list("index", flat=True)))
    push_status(job)
    return True


def delete(job: Job) -> None:
    """Remove a job with its original, tiles and result."""
    _discard_tiles(job)
    previews.discard(job)
    for field in (job.original, job.result):
        if field:
            field.delete(save=False)
    job.delete()


def resume() -> None:
    """Finish what a stopped collector left half done: an assembly, or a stage never dispatched."""
    for job in Job.objects.filter(status__in=[Job.Status.RUNNING, Job.Status.ASSEMBLING]):
        if job.tiles_done == job.tiles_total:
            resume_one(job)
        elif job.stage and not job.tiles.filter(stage=job.stage, attempts__gt=0).exists():
            dispatch_stage(job, job.stage)


def resume_one(job: Job) -> None:
    """Assemble a job whose tiles are all in, whatever stopped its assembly before."""
    Job.objects.filter(pk=job.pk, status=Job.Status.ASSEMBLING).update(status=Job.Status.RUNNING)
    job.refresh_from_db(fields=["status"])
    assemble_job(job)


def recover(now=None) -> None:
    """Re-dispatch what stopped moving; fail what never will.

    A job whose current stage has made no progress for TILE_DEADLINE_SECONDS --
    its tiles lost with a crashed web process, or on a broker that lost them --
    gets its unfinished tiles sent again from the stored original (or the stored
    previous stage). After TILE_MAX_DISPATCHES tries the job fails with a reason,
    so no job stays running forever.
    """
    now = now or timezone.now()
    deadline = timedelta(seconds=settings.TILE_DEADLINE_SECONDS)
    for job in Job.objects.filter(status__in=[Job.Status.QUEUED, Job.Status.RUNNING, Job.Status.ASSEMBLING]):
        pending = job.tiles.filter(stage=job.stage, status=Tile.Status.PENDING)
        moved = [job.created_at, job.last_tile_at, pending.aggregate(last=Max("dispatched_at"))["last"]]
        if now - max(m for m in moved if m) < deadline:
            continue
        if job.tiles_done == job.tiles_total:
            resume_one(job)
        elif not pending.exists():
            advance_stage(job, job.stage)
        elif pending.filter(attempts__gte=settings.TILE_MAX_DISPATCHES).exists():
            if job.fail(f"tiles were not finished after {settings.TILE_MAX_DISPATCHES} dispatches"):
                push_status(job)
        else:
            logger.warning(
                "job %s: no progress for %s; re-dispatching %d tiles", job.pk, deadline, pending.count()
            )
            dispatch_stage(job, job.stage, set(pending.values_list("index", flat=True)))


def stage_finished(job: Job, stage: int) -> bool:
    return stage < job.last_stage and not job.tiles.filter(stage=stage, status=Tile.Status.PENDING).exists()
