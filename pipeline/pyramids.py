"""Zoomable views of big jobs: a DeepZoom pyramid of the original and of the result, made by the
collector beside its loop once a job of PYRAMID_MIN_PIXELS or more is done.

The stored file is read a band of rows at a time (``imagepipe.core.bands``: the original as the
pipeline read it, turned upright and normalised) and its rows handed to ``deepzoom.Pyramid``,
which writes the tiles (PYRAMID_TILE_FORMAT, 254 pixels with a pixel of overlap, DeepZoom's own
layout) into one zip as each row of them is complete, stored beside the job's previews
(``jobs.pyramids`` serves it). Its memory is a row of tiles per level, not the image.
A job's pyramids are made by one builder at a time, which holds the job's lock on its own database
connection while it works: a collector killed mid-way lets the lock go with its connection, and
the next builder (that collector restarted, or another) makes them again. A pyramid that cannot be
made marks the job's viewer failed and says why in the log; the job stays done.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connection, connections
from django.db.models import BigIntegerField, F
from django.db.models.functions import Cast
from PIL import Image

from imagepipe.core import bands
from imagepipe.core.deepzoom import Abandoned, write_pyramid
from imagepipe.core.pipeline import Pixels
from jobs import pyramids, storage
from jobs.events import push_status
from jobs.models import Job

from .stages import original_pixels, stored_header

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


def make(job: Job, abandon: Callable[[], bool]) -> None:
    """Make and store both pyramids of the job, then mark its viewer ready (or failed); left as
    they were if ``abandon()`` turns true on the way (the next builder makes them again)."""
    started = time.perf_counter()
    try:
        store(job, "original", original_pixels(job), abandon)  # as the pipeline read it: upright
        if job.output_format != "deepzoom":  # else the result is a pyramid already
            store(job, "result", stored_pixels(str(job.result.name)), abandon)
    except Abandoned as exc:
        logger.info("job %s: its zoomable view was left part way (%s); it is made again later", job.pk, exc)
        return
    except (OSError, ValueError) as exc:  # OriginalError, Unstreamable, a file that won't decode
        logger.warning("job %s: its zoomable view could not be made: %s", job.pk, str(exc).strip())
        Job.objects.filter(pk=job.pk).update(viewer=Job.Viewer.FAILED)
        return
    if Job.objects.filter(pk=job.pk, status=Job.Status.DONE).update(viewer=Job.Viewer.READY):
        logger.info("job %s: zoomable view made in %.1f s", job.pk, time.perf_counter() - started)
        job.viewer = Job.Viewer.READY
        push_status(job)
    else:  # deleted or retried meanwhile: what was stored goes again
        storage.discard([pyramids.name(job.pk, which) for which in pyramids.WHICH])


def stored_pixels(name: str) -> Pixels:
    """A stored image (a result) read a band of rows at a time, from storage as it is read; one of
    a kind not read in bands (an AVIF or HEIC result) decoded whole, as it was encoded whole,
    within RESULT_WHOLE_MB."""
    header = stored_header(name, "the result")
    try:
        return bands.Bands(lambda: storage.Stream(name), header, directory=settings.SPOOL_DIR)
    except bands.Unstreamable:
        image = Image.open(io.BytesIO(storage.read(name)), formats=[str(header.format)])
        image.load()
        return image


def store(job: Job, which: str, pixels: Pixels, abandon: Callable[[], bool]) -> None:
    with storage.spool(settings.SPOOL_DIR) as zipped:
        write_pyramid(pixels, zipped, settings.PYRAMID_TILE_FORMAT, abandon, settings.SPOOL_DIR)
        size = zipped.tell()
        storage.save_file(pyramids.name(job.pk, which), zipped)
    job.count_stored(size)


class Builder:
    """The collector's pyramid maker: one job at a time, on a thread of its own, so that the loop
    goes on recording results meanwhile (libvips works outside the GIL)."""

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.stopping = threading.Event()

    def when_due(self) -> None:
        """Start on the next job that waits for its pyramids, unless one is being made."""
        if settings.PYRAMID_MIN_PIXELS and not (self.thread and self.thread.is_alive()):
            self.thread = threading.Thread(target=self.build_next, name="pyramids", daemon=True)
            self.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Abandon the pyramid under way at its next band and wait for the thread to end: a
        process that exits under a thread still in libvips or OpenCV aborts ("terminate called
        without an active exception")."""
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout)

    def build_next(self) -> None:
        try:
            build_one(self.stopping.is_set)
        except Exception:  # storage or the database away, or a bug: tried again when next due
            logger.exception("making a zoomable view failed; tried again later")
        finally:
            connections.close_all()  # this thread's own (its lock with it, if the release failed)


def build_one(abandon: Callable[[], bool] = lambda: False) -> Job | None:
    """Make the pyramids of the job waiting longest for them, if any builder may; that job."""
    job = wanted()
    if job is not None:
        try:
            make(job, abandon)
        finally:
            release(job)
    return job
