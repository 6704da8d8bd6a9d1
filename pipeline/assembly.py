"""Turning finished tiles into images: the next stage's input, or the job's result and its previews.

Stage images are rebuilt from the stored tiles, so a collector that stops
between stages, or mid-assembly, picks up where it left off (``recovery.resume``).
"""

from __future__ import annotations

import bisect
import logging
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from django.conf import settings
from django.db import InterfaceError, OperationalError
from PIL import Image

from imagepipe.core import statistics
from imagepipe.core.bands import whole_bytes
from imagepipe.core.chain import global_table
from imagepipe.core.codec import decode_tile
from imagepipe.core.deepzoom import write_pyramid
from imagepipe.core.jpeg import write_jpeg
from imagepipe.core.operations import without_alpha
from imagepipe.core.output import DEFAULT_JPEG_QUALITY, FORMATS, encode
from imagepipe.core.pipeline import output_size
from imagepipe.core.png import write_png
from imagepipe.core.tiff import write_tiff
from imagepipe.core.tiling import Box
from jobs import previews, storage
from jobs.events import push_status
from jobs.models import Job

from .canvas import CANVASES, Canvas

logger = logging.getLogger(__name__)


class StageTiles:
    """A finished stage's output read from its stored tiles, a part at a time: ``crop`` reads the
    tiles it crosses and keeps those of the tile rows it crossed, the rows the next crop down
    mostly needs again; the whole image is never held. Read top to bottom (the next stage's tiles
    cut in order, the result's bands written), each tile is read from storage about once."""

    def __init__(self, job: Job, stage: int) -> None:
        self.mode = job.stage_mode(stage + 1)  # its output's
        self.size = output_size(job.stages[stage], job.stage_size(stage))
        rows: dict[int, list[tuple[Box, str]]] = defaultdict(list)
        for tile in job.tiles.filter(stage=stage).only("job", "stage", "x", "y", "width", "height", "result"):
            box = job.placed_box(tile)
            rows[box.top].append((box, str(tile.result.name)))
        self.tops = sorted(rows)  # a grid, however the stage turned it: rows of equal tops
        self.rows = {top: sorted(row, key=lambda placed: placed[0].left) for top, row in rows.items()}
        self.held: dict[str, Image.Image] = {}

    @property
    def nbytes(self) -> int:
        return sum(whole_bytes(image.mode, image.size) for image in self.held.values())

    def crop(self, box: tuple[int, int, int, int]) -> Image.Image:
        left, top, right, bottom = box
        out = Image.new(self.mode, (right - left, bottom - top))
        first = max(bisect.bisect_right(self.tops, top) - 1, 0)
        crossed = [self.rows[row_top] for row_top in self.tops[first : bisect.bisect_left(self.tops, bottom)]]
        held: dict[str, Image.Image] = {}
        for row in crossed:
            for placed, name in row:
                if placed.left < right and placed.right > left:
                    held[name] = self.held.get(name) or self.read(name, placed)
                    out.paste(held[name], (placed.left - left, placed.top - top))
                elif name in self.held:  # in a row crossed: the next crop along may want it
                    held[name] = self.held[name]
        self.held = held
        return out

    def read(self, name: str, placed: Box) -> Image.Image:
        image = decode_tile(storage.read(name))
        if image.size != (placed.width, placed.height) or image.mode != self.mode:
            raise ValueError(f"tile for {placed} is {image.mode} {image.size}")
        return image


def next_stage_input(job: Job, finished: int) -> tuple[StageTiles, list[int] | None]:
    """What the next stage cuts its tiles from (the finished stage's stored tiles, read as its
    tiles are cut), and its global step's table."""
    return StageTiles(job, finished), next_stage_table(job, finished)


def next_stage_table(job: Job, finished: int) -> list[int] | None:
    """The next stage's global step's table, from the sum of the histograms the finished stage's
    tiles reported: the whole image's statistics without reading the whole image. None for a
    stage that starts by resampling."""
    if job.stages[finished + 1][0].op.kind != "global":
        return None
    stats = statistics.add(job.tiles.filter(stage=finished).values_list("stats", flat=True))  # type: ignore[arg-type]  # a JSON column: the lists each tile reported
    return global_table(job.stages[finished + 1][0], stats, without_alpha(job.stage_mode(finished + 1)))


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
    pixels: Canvas | StageTiles = canvas if canvas else StageTiles(job, job.last_stage)
    name = f"results/{job.pk}{FORMATS[job.output_format].extension}"
    with _written(job, pixels) as spool:
        encoded = time.perf_counter()
        size = spool.tell()
        name = storage.save_file(name, spool)
    stored = time.perf_counter()
    shown = pixels.preview() if isinstance(pixels, Canvas) and pixels.streamed else pixels
    previews.store(job, "result", shown)
    logger.info(
        "job %s assembled from %s: encoded in %.2f s, stored in %.2f s, previews in %.2f s",
        job.pk,
        "its canvas" if canvas else "storage",
        encoded - started,
        stored - encoded,
        time.perf_counter() - stored,
    )
    return name, size


@contextmanager
def _written(job: Job, pixels: Canvas | StageTiles) -> Iterator[BinaryIO]:
    """The result written in a spool file, at its end: a PNG its canvas wrote as the tiles came,
    anything else written now."""
    if isinstance(pixels, Canvas) and pixels.streamed:
        try:
            yield pixels.finished_png()
        finally:
            pixels.close()
        return
    with storage.spool(settings.SPOOL_DIR) as spool:
        _write_result(job, pixels, spool)
        yield spool


def _write_result(job: Job, pixels: Canvas | StageTiles, out) -> None:
    """The result, written to ``out``: a PNG band by band; a TIFF a row of tiles at a time; a
    JPEG through a raw spool, a band at a time; WebP encoded from the whole image
    (``RESULT_WHOLE_MB`` bounds it)."""
    icc_profile = bytes(job.icc_profile) or None
    level, threads = settings.RESULT_PNG_COMPRESS_LEVEL, settings.RESULT_PNG_THREADS
    if job.output_format == "png":
        write_png(pixels, out, level, icc_profile, threads)
    elif job.output_format == "tiff":
        write_tiff(pixels, out, icc_profile, threads)
    elif job.output_format == "jpeg":
        quality = job.output_quality or DEFAULT_JPEG_QUALITY
        write_jpeg(pixels, out, quality, icc_profile, settings.SPOOL_DIR)
    elif job.output_format == "deepzoom":
        write_pyramid(pixels, out, "png", directory=settings.SPOOL_DIR)
    else:
        whole = pixels.crop((0, 0, *pixels.size))
        out.write(encode(whole, job.output_format, job.output_quality, icc_profile, level, threads))
