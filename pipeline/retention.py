"""What is kept, and for how long: an ended job for JOB_RETENTION_DAYS after it ended, unless its
owner or staff marked it ``keep``; a worker's or a collector's row for WORKER_RETENTION_DAYS after
it was last seen; a resumable upload for UPLOAD_EXPIRY_HOURS after its last piece.
``manage.py prune`` deletes what has expired, and so does the dispatcher in its idle time
(``Pruner``).

Deletion goes a bounded batch a transaction, so no transaction is long and nothing waits on one
for more than a moment. A job's files are deleted once its row's deletion has committed
(``jobs.cleanup``), never before.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Count, Sum
from django.utils import timezone

from jobs.models import Job, JobQuerySet, Tile, Upload

from .models import Collector, Worker

logger = logging.getLogger(__name__)
JOBS_A_BATCH = 50  # at most, and no more of their tiles than
TILES_A_BATCH = 20_000  # (one job at least, whatever its tiles: MAX_TILES_PER_JOB bounds them)
ROWS_A_BATCH = 500  # workers or collectors
PRUNE_LOCK = 0x494D_5052  # "IMPR": one pruner at a time (the others find nothing to do)
MB = 1024 * 1024


@dataclass
class Pruned:
    """What a pruning deleted (or, for a dry run, would delete)."""

    jobs: int = 0
    bytes: int = 0  # the jobs' files
    workers: int = 0
    collectors: int = 0
    uploads: int = 0  # resumable uploads not added to for UPLOAD_EXPIRY_HOURS
    batches: int = 0
    finished: bool = True  # False: it gave way to other work; the rest waits for the next time

    def __str__(self) -> str:
        return (
            f"{self.jobs} jobs ({self.bytes / MB:.1f} MB of files), {self.workers} workers, "
            f"{self.collectors} collectors, {self.uploads} expired uploads"
        )


def _before(days: int, now: datetime) -> datetime | None:
    """The moment before which rows kept for ``days`` have expired; None: kept forever."""
    return now - timedelta(days=days) if days else None


def expired_jobs(now: datetime) -> JobQuerySet:
    before = _before(settings.JOB_RETENTION_DAYS, now)
    return Job.objects.expired(before) if before else Job.objects.none()


def expired_rows(model: type[Worker] | type[Collector], now: datetime) -> models.QuerySet:
    """A process's rows (workers', collectors') not seen for WORKER_RETENTION_DAYS."""
    before = _before(settings.WORKER_RETENTION_DAYS, now)
    return model.objects.filter(last_seen__lt=before) if before else model.objects.none()


def policy() -> str:
    jobs, workers = settings.JOB_RETENTION_DAYS, settings.WORKER_RETENTION_DAYS
    kept = f"jobs ended more than {jobs} days ago and not marked keep" if jobs else "no job (kept forever)"
    rows = f"workers and collectors not seen for {workers} days" if workers else "no worker (kept forever)"
    return f"{kept}; {rows}; uploads not added to for {settings.UPLOAD_EXPIRY_HOURS:g} hours"


def expired(now: datetime | None = None) -> Pruned:
    """What ``prune`` would delete now."""
    now = now or timezone.now()
    jobs = expired_jobs(now).aggregate(count=Count("pk"), bytes=Sum("stored_bytes"))
    workers, collectors = (expired_rows(model, now).count() for model in (Worker, Collector))
    uploads = Upload.objects.expired(now).count()
    return Pruned(jobs["count"], jobs["bytes"] or 0, workers, collectors, uploads)


def prune(
    now: datetime | None = None, busy: Callable[[], bool] = lambda: False, tiles: int = TILES_A_BATCH
) -> Pruned:
    """Delete everything expired, a batch a transaction, until nothing is left -- or until
    ``busy()``, asked after each batch, says other work waits (then ``finished`` is False)."""
    now = now or timezone.now()
    pruned = Pruned()
    batches: list[Callable[[], int]] = [
        lambda: delete_jobs(now, pruned, tiles),
        lambda: delete_rows(Worker, now, pruned),
        lambda: delete_rows(Collector, now, pruned),
        lambda: delete_uploads(now, pruned),
    ]
    for batch in batches:
        while batch():
            pruned.batches += 1
            if busy():
                pruned.finished = False
                return pruned
    return pruned


def delete_jobs(now: datetime, pruned: Pruned, tiles: int = TILES_A_BATCH) -> int:
    """One batch of expired jobs, the longest ended first, with their tiles; how many went."""
    ids: list[uuid.UUID] = []
    count = 0
    for pk, total in (
        expired_jobs(now).order_by("finished_at").values_list("pk", "tiles_total")[:JOBS_A_BATCH]
    ):
        if ids and count + total > tiles:
            break
        ids.append(pk)
        count += total
    if not ids:
        return 0
    with transaction.atomic():
        if not _lead():
            return 0
        # The tiles, then the jobs (the lock order: jobs.models), and the jobs read again under
        # their locks: one retried or marked keep since it was picked stays.
        list(Tile.objects.filter(job_id__in=ids).select_for_update().values_list("pk", flat=True))
        gone = list(
            expired_jobs(now).filter(pk__in=ids).select_for_update().values_list("pk", "stored_bytes")
        )
        Job.objects.filter(pk__in=[pk for pk, _ in gone]).delete()  # the files once this commits
    pruned.jobs += len(gone)
    pruned.bytes += sum(size for _, size in gone)
    return len(gone)


def delete_rows(model: type[Worker] | type[Collector], now: datetime, pruned: Pruned) -> int:
    """One batch of a process's rows not seen for WORKER_RETENTION_DAYS; how many went."""
    ids = list(expired_rows(model, now).order_by("last_seen").values_list("pk", flat=True)[:ROWS_A_BATCH])
    # Read again as it is deleted: one heard from since it was picked stays.
    deleted, _ = expired_rows(model, now).filter(pk__in=ids).delete()
    field = "workers" if model is Worker else "collectors"
    setattr(pruned, field, getattr(pruned, field) + deleted)
    return deleted


def delete_uploads(now: datetime, pruned: Pruned) -> int:
    """One batch of expired uploads; their pieces go once the deletion commits (``jobs.cleanup``)."""
    ids = list(Upload.objects.expired(now).values_list("pk", flat=True)[:ROWS_A_BATCH])
    with transaction.atomic():
        deleted, _ = Upload.objects.expired(now).filter(pk__in=ids).delete()  # one added to meanwhile stays
    pruned.uploads += deleted
    return deleted


def _lead() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [PRUNE_LOCK])
        return bool(cursor.fetchone()[0])


class Pruner:
    """Pruning in a loop's idle time: at most once per PRUNE_INTERVAL_SECONDS (never at 0), giving
    way between batches as soon as ``busy()`` says work waits (the rest at the next idle moment).
    It never raises: a pruning that fails is logged and tried again an interval later."""

    def __init__(self, busy: Callable[[], bool], clock: Callable[[], float] = time.monotonic) -> None:
        self.busy = busy
        self.clock = clock
        self.due = clock()  # at the first idle moment

    def when_due(self) -> Pruned | None:
        """Prune if it is time; what was pruned, or None if it was not time."""
        interval = settings.PRUNE_INTERVAL_SECONDS
        if not interval or self.clock() < self.due:
            return None
        try:
            pruned = prune(busy=self.busy)
        except Exception:  # the database away, or a bug: never the end of the loop that idles
            logger.exception("pruning failed; again in %g s", interval)
            self.due = self.clock() + interval
            return None
        if pruned.finished:
            self.due = self.clock() + interval
        if pruned.batches:
            logger.info("pruned %s%s", pruned, "" if pruned.finished else "; more to go when idle again")
        return pruned
