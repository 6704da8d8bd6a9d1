"""Workers as seen through their heartbeats."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class Worker(models.Model):
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

    class Meta:
        ordering = ["-last_seen"]

    def __str__(self) -> str:
        return self.id

    @property
    def status(self) -> str:
        """online, stale or offline, from the age of the last heartbeat."""
        if self.stopped:
            return "offline"
        age = timezone.now() - self.last_seen
        if age <= timedelta(seconds=settings.WORKER_STALE_AFTER_SECONDS):
            return "online"
        if age <= timedelta(seconds=settings.WORKER_OFFLINE_AFTER_SECONDS):
            return "stale"
        return "offline"

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
                "stopped": beat.stopping,
                "counters": beat.counters,
                "last_seen": seen_at or timezone.now(),
            },
        )
        return worker
