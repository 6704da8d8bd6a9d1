"""Finishing what stopped: work a collector left half done, and jobs whose tiles stopped moving.

The collector runs ``resume`` when it starts and ``recover`` every COLLECTOR_SWEEP_SECONDS.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from .assembly import assemble_job
from .dispatch import advance_stage, dispatch_stage
from .events import push_status
from .models import Job

logger = logging.getLogger(__name__)


def resume() -> None:
    """Finish what a stopped collector left half done: an assembly, or a stage never dispatched."""
    for job in Job.objects.filter(status__in=[Job.Status.RUNNING, Job.Status.ASSEMBLING]):
        if job.tiles_done == job.tiles_total:
            resume_assembly(job)
        elif job.stage and not job.tiles.filter(stage=job.stage, attempts__gt=0).exists():
            dispatch_stage(job, job.stage)


def resume_assembly(job: Job) -> None:
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
    for job in Job.objects.unfinished():
        pending = job.tiles.pending(job.stage)
        moved = [job.created_at, job.last_tile_at, pending.aggregate(last=Max("dispatched_at"))["last"]]
        if now - max(m for m in moved if m) < deadline:
            continue
        if job.tiles_done == job.tiles_total:
            resume_assembly(job)
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
