"""The collector's sweep: stuck jobs are re-sent, hopeless ones fail, moving ones are left alone."""

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job, Tile
from jobs.recovery import recover

pytestmark = pytest.mark.django_db


def test_a_job_that_keeps_moving_is_left_alone(job, settings):
    recover(now=timezone.now() + timedelta(seconds=settings.TILE_DEADLINE_SECONDS - 1))
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED and not job.tiles.filter(attempts__gt=0).exists()


def test_a_job_whose_tiles_were_sent_too_often_fails_with_the_reason(job, settings):
    Tile.objects.filter(job=job).update(attempts=settings.TILE_MAX_DISPATCHES, dispatched_at=timezone.now())
    recover(now=timezone.now() + timedelta(seconds=settings.TILE_DEADLINE_SECONDS + 1))
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error == f"tiles were not finished after {settings.TILE_MAX_DISPATCHES} dispatches"


def test_a_stuck_job_is_re_sent_from_the_stored_original(job, settings, kafka_topics):
    recover(now=timezone.now() + timedelta(seconds=settings.TILE_DEADLINE_SECONDS + 1))
    assert set(job.tiles.values_list("attempts", flat=True)) == {1}
