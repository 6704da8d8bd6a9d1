"""Finishing what stopped: work a collector left half done, and jobs whose tiles stopped moving.

The collector runs ``resume`` when it starts and ``recover`` every COLLECTOR_SWEEP_SECONDS.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from jobs.events import push_status
from jobs.models import Job

from .assembly import assemble_job
from .models import Collector
from .stages import advance_stage

logger = logging.getLogger(__name__)


def resume() -> None:
    """Finish the assemblies a stopped collector left half done."""
    for job in Job.objects.filter(status__in=[Job.Status.RUNNING, Job.Status.PAUSED, Job.Status.ASSEMBLING]):
        if job.tiles_done == job.tiles_total:
            # Unless a live process is assembling it: it holds the job's assembly lock (another
            # collector, or the dispatcher assembling a retry).
            assemble_job(job, resuming=True)


def recover(now=None) -> None:
    """Queue again what stopped moving; fail what never will.

    A tile sent TILE_DEADLINE_SECONDS ago and still not recorded -- lost with a crashed worker,
    or on a broker that lost it -- goes back in the queue, and the dispatcher sends it again from
    the stored original (or the stored previous stage). A tile sent TILE_MAX_DISPATCHES times
    fails its job with the reason, so no job stays running forever. A job whose tiles are all in
    but that never advanced or assembled is moved on.

    Not while a collector waits for storage: its tiles are not lost, only not yet stored, and
    sending them again (or failing their jobs for it) would spend dispatches on an outage.
    """
    if Collector.objects.waiting_for_storage().exists():
        logger.warning("a collector is waiting for storage: no tile is re-sent or failed as stuck meanwhile")
        return
    now = now or timezone.now()
    deadline = timedelta(seconds=settings.TILE_DEADLINE_SECONDS)
    for job in Job.objects.unfinished():
        stuck = job.tiles.in_flight(job.stage).filter(dispatched_at__lt=now - deadline)
        if stuck.filter(attempts__gte=settings.TILE_MAX_DISPATCHES).exists():
            if job.fail(f"tiles were not finished after {settings.TILE_MAX_DISPATCHES} dispatches"):
                push_status(job)
        elif requeued := stuck.requeue():
            logger.warning("job %s: %d tiles not back after %s; queued again", job.pk, requeued, deadline)
        elif job.last_tile_at and now - job.last_tile_at >= deadline:
            if job.tiles_done == job.tiles_total:
                assemble_job(job, resuming=True)
            elif not job.tiles.pending(job.stage).exists():
                advance_stage(job, job.stage)
