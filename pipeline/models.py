"""The pipeline's processes as the database sees them: workers through their heartbeats, collectors
through their own reports."""

from __future__ import annotations

import os
import socket
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Count, Q
from django.utils import timezone

if TYPE_CHECKING:
    from .watchdog import WatchedConsumer


class WorkerQuerySet(models.QuerySet):
    def online(self) -> WorkerQuerySet:
        """Workers whose last heartbeat is fresh and not their last."""
        fresh, _ = _heartbeat_bounds(timezone.now())
        return self.filter(stopped=False, last_seen__gte=fresh)

    def count_by_status(self) -> dict[str, int]:
        """How many workers are online, stale and offline, counted in the database."""
        fresh, alive = _heartbeat_bounds(timezone.now())
        counts = self.aggregate(
            total=Count("pk"),
            online=Count("pk", filter=Q(stopped=False, last_seen__gte=fresh)),
            alive=Count("pk", filter=Q(stopped=False, last_seen__gte=alive)),
        )
        return {
            Worker.Status.ONLINE: counts["online"],
            Worker.Status.STALE: counts["alive"] - counts["online"],
            Worker.Status.OFFLINE: counts["total"] - counts["alive"],
        }


def _heartbeat_bounds(now: datetime) -> tuple[datetime, datetime]:
    """A heartbeat since the first is online; since the second, stale; older (or stopped), offline."""
    return (
        now - timedelta(seconds=settings.WORKER_STALE_AFTER_SECONDS),
        now - timedelta(seconds=settings.WORKER_OFFLINE_AFTER_SECONDS),
    )


class Worker(models.Model):
    class Status(models.TextChoices):
        ONLINE = "online"
        STALE = "stale"
        OFFLINE = "offline"

    id = models.CharField(primary_key=True, max_length=255)
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField(default=0)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now, db_index=True)
    tiles_done = models.PositiveIntegerField(default=0)
    current_job = models.CharField(max_length=64, blank=True)
    partitions = models.JSONField(default=list)
    stopped = models.BooleanField(default=False)
    counters = models.JSONField(default=dict, blank=True)  # malformed, dead_lettered, skipped

    objects = WorkerQuerySet.as_manager()

    # Not stored: set on each worker for the workers' page (system.workers.worker_list).
    tiles_per_second: float
    counts: list[int]

    class Meta:
        ordering = ["-last_seen"]
        db_table = "workers_worker"  # the table it had in the app it came from (pipeline/migrations)

    def __str__(self) -> str:
        return self.id

    @property
    def status(self) -> Worker.Status:
        """Online, stale or offline, from the age of the last heartbeat (as count_by_status counts)."""
        fresh, alive = _heartbeat_bounds(timezone.now())
        if self.stopped or self.last_seen < alive:
            return Worker.Status.OFFLINE
        return Worker.Status.ONLINE if self.last_seen >= fresh else Worker.Status.STALE

    @classmethod
    def record_heartbeat(cls, beat, seen_at=None) -> Worker:
        worker, _ = cls.objects.update_or_create(
            id=beat.worker,
            defaults={
                "host": beat.host,
                "pid": beat.pid,
                "tiles_done": beat.tiles_done,
                "current_job": beat.current_job,
                "partitions": beat.partitions,
                "stopped": beat.stopped,
                "counters": beat.counters,
                "last_seen": seen_at or timezone.now(),
            },
        )
        return worker


class CollectorQuerySet(models.QuerySet):
    def live(self) -> CollectorQuerySet:
        """Collectors that reported within COLLECTOR_STALE_SECONDS and have not stopped."""
        since = timezone.now() - timedelta(seconds=settings.COLLECTOR_STALE_SECONDS)
        return self.filter(stopped=False, last_seen__gte=since)

    def waiting_for_storage(self) -> CollectorQuerySet:
        """Live collectors whose work waits for storage to answer again."""
        return self.live().exclude(storage_error="")


class Collector(models.Model):
    """A running collector's report of itself, rewritten every COLLECTOR_REPORT_SECONDS.

    Workers are seen through the heartbeats the collector records; the collector itself is seen
    through this row, so a collector that stops consuming is visible even though it is alive.
    """

    id = models.CharField(primary_key=True, max_length=255)  # <host>-<pid>
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now, db_index=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    partitions = models.JSONField(default=list)  # "topic[partition]" held now
    lag = models.BigIntegerField(default=0)  # messages waiting in those partitions
    rebuilds = models.PositiveIntegerField(default=0)  # times its watchdog rebuilt its consumer
    stalled = models.CharField(max_length=255, blank=True)  # why the last rebuild happened
    # Why storage refused the work in hand, while the collector waits for it; empty otherwise.
    storage_error = models.CharField(max_length=255, blank=True)
    stopped = models.BooleanField(default=False)
    # What it did with messages it did not record: malformed, unsigned, stale_nonce, late, ...
    counters = models.JSONField(default=dict, blank=True)

    objects = CollectorQuerySet.as_manager()

    class Meta:
        ordering = ["-last_seen"]
        db_table = "jobs_collector"  # the table it had in the app it came from (pipeline/migrations)

    def __str__(self) -> str:
        return self.id

    @classmethod
    def report(
        cls,
        consumer: WatchedConsumer,
        partitions: list[str],
        storage_error: str,
        stopped: bool,
        counters: Counter[str],
    ) -> None:
        """This process's collector as it is now (its consumer, the partitions it holds, why storage
        refuses it if it does, what it did with messages it did not record): its row written
        afresh."""
        now = timezone.now()
        cls.objects.update_or_create(
            id=f"{socket.gethostname()}-{os.getpid()}",
            defaults={
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "last_seen": now,
                "last_message_at": now - timedelta(seconds=time.monotonic() - consumer.last_message),
                "partitions": partitions,
                "lag": consumer.lag,
                "rebuilds": consumer.rebuilds,
                "stalled": consumer.stalled[:255],
                "storage_error": storage_error[:255],
                "stopped": stopped,
                "counters": {name: count for name, count in counters.items() if count},
            },
        )

    @property
    def consuming(self) -> bool:
        """Holds partitions and is not sitting on waiting messages past the watchdog's bound."""
        if not self.partitions:
            return False
        quiet = timezone.now() - (self.last_message_at or self.started_at)
        return not (self.lag and quiet > timedelta(seconds=settings.CONSUMER_STALL_SECONDS))
