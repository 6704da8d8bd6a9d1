"""Zoomable views of big jobs: a DeepZoom pyramid of the original and of the result, made by the
collector beside its loop once a job of PYRAMID_MIN_PIXELS or more is done.

libvips reads the stored file in a stream and writes the pyramid's tiles (PYRAMID_TILE_FORMAT,
254 pixels with a pixel of overlap, DeepZoom's own layout) into one zip, stored beside the job's
previews (``jobs.pyramids`` serves it). Its memory is a few rows of tiles per level, not the image.
A job's pyramids are made by one builder at a time, which holds the job's lock on its own database
connection while it works: a collector killed mid-way lets the lock go with its connection, and
the next builder (that collector restarted, or another) makes them again. A pyramid that cannot be
made marks the job's viewer failed and says why in the log; the job stays done.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyvips
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, connections
from django.db.models import BigIntegerField, F
from django.db.models.functions import Cast

from imagepipe.core import bands
from imagepipe.core.deepzoom import write_pyramid
from jobs import pyramids, storage
from jobs.events import push_status
from jobs.models import Job

from .stages import OriginalError, original_header

logger = logging.getLogger(__name__)
PYRAMID_LOCK = 0x494D_5059  # "IMPY": with the job's id, held while its pyramids are made


def wanted() -> Job | None:
    """The done job waiting longest for its pyramids that no builder holds, its lock taken on
    this thread's connection (``release`` lets it go)."""
    if not settings.PYRAMID_MIN_PIXELS:
        return None
    candidates = (
        Job.objects.filter(status=Job.Status.DONE, viewer=Job.Viewer.NONE)
        .annotate(pixels=Cast("width", BigIntegerField()) * F("height"))
        .filter(pixels__gte=settings.PYRAMID_MIN_PIXELS)
        .order_by("finished_at")
        .defer("icc_profile")
    )
    for job in candidates[:20]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", [PYRAMID_LOCK, str(job.pk)])
            if cursor.fetchone()[0]:
                return job
    return None


def release(job: Job) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", [PYRAMID_LOCK, str(job.pk)])


def make(job: Job) -> None:
    """Make and store both pyramids of the job, then mark its viewer ready (or failed)."""
    started = time.perf_counter()
    try:
        turn = bands.orientation(original_header(job))  # the pipeline's, as Pillow reads it
        made = [("original", job.original, turn)]
        if job.output_format != "deepzoom":  # else the result is a pyramid already
            made.append(("result", job.result, 1))
        for which, field, turned in made:
            with local_copy(str(field.name)) as path:
                store(job, which, viewable(path, turned))
    except (pyvips.Error, OriginalError) as exc:
        logger.warning("job %s: its zoomable view could not be made: %s", job.pk, str(exc).strip())
        Job.objects.filter(pk=job.pk).update(viewer=Job.Viewer.FAILED)
        return
    if Job.objects.filter(pk=job.pk, status=Job.Status.DONE).update(viewer=Job.Viewer.READY):
        logger.info("job %s: zoomable view made in %.1f s", job.pk, time.perf_counter() - started)
        job.viewer = Job.Viewer.READY
        push_status(job)
    else:  # deleted or retried meanwhile: what was stored goes again
        storage.discard([pyramids.name(job.pk, which) for which in pyramids.WHICH])


@contextmanager
def local_copy(name: str) -> Iterator[Path]:
    """A stored file as a path libvips can open: storage's own on a disk, else a temporary copy."""
    try:
        yield Path(default_storage.path(name))
        return
    except NotImplementedError:  # object storage
        pass
    with tempfile.NamedTemporaryFile(dir=settings.RESULT_SPOOL_DIR, suffix=Path(name).suffix) as copy:
        with storage.calls(f"reading {name}"), default_storage.open(name, "rb") as source:
            while piece := source.read(8 << 20):
                copy.write(piece)
        copy.flush()
        yield Path(copy.name)


def viewable(path: Path, turn: int) -> pyvips.Image:
    """The file as it should look: turned by its EXIF orientation ``turn``, in sRGB (or grey) 8-bit."""
    access = "sequential" if turn in bands.ROW_LOCAL else "random"  # turning needs random access
    image = bands.upright(pyvips.Image.new_from_file(str(path), access=access), turn)
    grey = image.interpretation in ("b-w", "grey16")
    if image.interpretation not in ("srgb", "b-w") or image.format != "uchar":
        image = image.colourspace("b-w" if grey else "srgb").cast("uchar")
    return image


def store(job: Job, which: str, image: pyvips.Image) -> None:
    with tempfile.TemporaryFile(dir=settings.RESULT_SPOOL_DIR) as zipped:
        write_pyramid(image, zipped, settings.PYRAMID_TILE_FORMAT, settings.RESULT_SPOOL_DIR)
        size = zipped.tell()
        storage.save_file(pyramids.name(job.pk, which), zipped)
    job.count_stored(size)


class Builder:
    """The collector's pyramid maker: one job at a time, on a thread of its own, so that the loop
    goes on recording results meanwhile (libvips works outside the GIL)."""

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None

    def when_due(self) -> None:
        """Start on the next job that waits for its pyramids, unless one is being made."""
        if settings.PYRAMID_MIN_PIXELS and not (self.thread and self.thread.is_alive()):
            self.thread = threading.Thread(target=self.build_next, name="pyramids", daemon=True)
            self.thread.start()

    @staticmethod
    def build_next() -> None:
        try:
            build_one()
        except Exception:  # storage or the database away, or a bug: tried again when next due
            logger.exception("making a zoomable view failed; tried again later")
        finally:
            connections.close_all()  # this thread's own (its lock with it, if the release failed)


def build_one() -> Job | None:
    """Make the pyramids of the job waiting longest for them, if any builder may; that job."""
    job = wanted()
    if job is not None:
        try:
            make(job)
        finally:
            release(job)
    return job
