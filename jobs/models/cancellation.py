"""The cancellations a job's workers are still to be told of. (The lock order: ``jobs.models``.)"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class PendingCancellation(models.Model):
    """A cancellation the workers have not been told of yet: written with the job's change, so the
    request that cancels never waits on Kafka; the dispatcher publishes it to ``cancellations`` and
    deletes it. Not a foreign key: a deleted job's tiles are to be dropped too."""

    id = models.BigAutoField(primary_key=True)  # the order they were made in
    job_id = models.UUIDField()
    generation = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"cancel {self.job_id} up to generation {self.generation}"
