"""Turning finished tiles into images: the next stage's input, or the job's result and its previews.

Stage images are rebuilt from the stored tiles, so a collector that stops
between stages, or mid-assembly, picks up where it left off (``recovery.resume``).
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import InterfaceError, OperationalError
from PIL import Image

from imagepipe.core import statistics
from imagepipe.core.chain import global_table
from imagepipe.core.codec import decode_tile
from imagepipe.core.operations import chain_output_mode, without_alpha
from imagepipe.core.output import FORMATS, encode
from imagepipe.core.pipeline import assemble, output_size
from jobs import previews, storage
from jobs.events import push_status
from jobs.models import Job, Tile

from .canvas import CANVASES, Canvas

logger = logging.getLogger(__name__)


def stage_image(job: Job, stage: int) -> Image.Image:
    """A finished stage's output, pasted together from its stored tiles."""
    steps, size = job.stages[stage], job.stage_size(stage)
    tiles = job.tiles.filter(stage=stage).only("stage", "x", "y", "width", "height", "result")
    placed = ((job.placed_box(tile), _read(tile)) for tile in tiles)
    return assemble(output_size(steps, size), stage_mode(job, stage), placed)


def stage_mode(job: Job, stage: int) -> str:
    """The mode of a stage's output."""
    return chain_output_mode(job.mode, [s for earlier in job.stages[: stage + 1] for s in earlier])


def _read(tile: Tile) -> Image.Image:
    return decode_tile(storage.read(str(tile.result.name)))


def next_stage_input(job: Job, finished: int) -> tuple[Image.Image, list[int]]:
    """The image the next stage cuts its tiles from, and its global step's table."""
    return stage_image(job, finished), next_stage_table(job, finished)


def next_stage_table(job: Job, finished: int) -> list[int]:
    """The next stage's global step's table, from the sum of the histograms the finished stage's
    tiles reported: the whole image's statistics without reading the whole image."""
    stats = statistics.add(job.tiles.filter(stage=finished).values_list("stats", flat=True))  # type: ignore[arg-type]  # a JSON column: the lists each tile reported
    return global_table(job.stages[finished + 1][0], stats, without_alpha(stage_mode(job, finished)))


def assemble_job(job: Job, resuming: bool = False) -> None:
    """Build, store and publish the result once every tile is in: one process at a time holds the
    job's assembly lock, and only one caller wins the claim. ``resuming``: also a job left
    assembling, whose assembler is gone (its lock was free)."""
    with job.assembly_lock() as mine:
        if mine and job.claim_assembly(resuming):
            _assemble(job)


def _assemble(job: Job) -> None:
    push_status(job)
    try:
        name, size = _store_result(job)
    except (OperationalError, InterfaceError):
        raise  # the database, not the job: the collector retries
    except storage.StorageUnavailable:
        # Storage, not the job: handed back (running, every tile in), assembled once it answers.
        if job.release_assembly():
            push_status(job)
        raise
    except Exception as exc:
        logger.exception("assembling job %s failed", job.pk)
        job.fail(f"assembling the result failed: {exc}")
    else:
        if job.finish(name, size):  # its stored tiles go with it: the result holds their pixels
            logger.info("job %s done: %s", job.pk, name)
        else:  # cancelled or deleted meanwhile: the file is nobody's
            logger.info("job %s ended while it was assembled; its result is dropped", job.pk)
            storage.discard([name])
            try:
                job.refresh_from_db(fields=["status", "error", "finished_at"])
            except Job.DoesNotExist:
                return  # deleted: its page has gone too
    push_status(job)


def _store_result(job: Job) -> tuple[str, int]:
    """Store the result, then its previews (before the job is done, so a done job has them); the
    result's name and size."""
    started = time.perf_counter()
    canvas = CANVASES.take(job)
    pixels: Canvas | Image.Image = canvas if canvas else stage_image(job, job.last_stage)
    data = _result_file(job, pixels)
    encoded = time.perf_counter()
    name = storage.save(f"results/{job.pk}{FORMATS[job.output_format].extension}", data)
    stored = time.perf_counter()
    previews.store(job, "result", pixels)
    logger.info(
        "job %s assembled from %s: encoded in %.2f s, stored in %.2f s, previews in %.2f s",
        job.pk,
        "its canvas" if canvas else "storage",
        encoded - started,
        stored - encoded,
        time.perf_counter() - stored,
    )
    return name, len(data)


def _result_file(job: Job, pixels: Canvas | Image.Image) -> bytes:
    """The result, from the canvas the collector pasted it on if it has one (a PNG's bands mostly
    deflated already), else from the stored tiles."""
    icc_profile = bytes(job.icc_profile) or None
    if isinstance(pixels, Canvas) and pixels.png:
        return pixels.png_file(icc_profile)
    image = pixels.image() if isinstance(pixels, Canvas) else pixels
    return encode(
        image,
        job.output_format,
        job.output_quality,
        icc_profile,
        settings.RESULT_PNG_COMPRESS_LEVEL,
        settings.RESULT_PNG_THREADS,
    )
