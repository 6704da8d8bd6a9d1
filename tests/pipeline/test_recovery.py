"""The collector's sweep: lost tiles are queued again, hopeless jobs fail, moving ones are left alone."""

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job, Tile
from pipeline.models import Collector
from pipeline.recovery import recover

pytestmark = pytest.mark.django_db


def test_a_job_that_keeps_moving_is_left_alone(job, settings):
    Tile.objects.filter(job=job, index__lt=3).update(
        state=Tile.State.SENT, attempts=1, dispatched_at=timezone.now()
    )
    recover(now=timezone.now() + timedelta(seconds=settings.TILE_DEADLINE_SECONDS - 1))
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED
    assert set(job.tiles.in_flight().values_list("index", flat=True)) == {0, 1, 2}


def test_a_job_waiting_its_turn_is_left_alone_however_long(job, settings):
    recover(now=timezone.now() + timedelta(days=1))
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED and job.tiles.queued().count() == job.tiles_total


def test_a_job_whose_tiles_were_sent_too_often_fails_with_the_reason(job, settings):
    Tile.objects.filter(job=job).update(
        state=Tile.State.SENT, attempts=settings.TILE_MAX_DISPATCHES, dispatched_at=timezone.now()
    )
    recover(now=timezone.now() + timedelta(seconds=settings.TILE_DEADLINE_SECONDS + 1))
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error == f"tiles were not finished after {settings.TILE_MAX_DISPATCHES} dispatches"


def test_tiles_not_back_by_the_deadline_are_queued_again(job, settings):
    sent = timezone.now()
    Tile.objects.filter(job=job, index__lt=2).update(state=Tile.State.SENT, attempts=1, dispatched_at=sent)
    Tile.objects.filter(job=job, index=2).update(
        state=Tile.State.SENT, attempts=1, dispatched_at=sent + timedelta(seconds=5)
    )
    recover(now=sent + timedelta(seconds=settings.TILE_DEADLINE_SECONDS + 1))
    assert set(job.tiles.in_flight().values_list("index", flat=True)) == {2}
    assert job.tiles.queued().count() == job.tiles_total - 1  # the dispatcher sends them again


def test_no_tile_is_sent_again_or_failed_while_a_collector_waits_for_storage(job, settings):
    Tile.objects.filter(job=job).update(
        state=Tile.State.SENT, attempts=settings.TILE_MAX_DISPATCHES, dispatched_at=timezone.now()
    )
    waiting = Collector.objects.create(id="c1", host="h", pid=1, storage_error="writing tiles/x: away")
    later = timezone.now() + timedelta(seconds=settings.TILE_DEADLINE_SECONDS + 1)
    recover(now=later)
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED and job.tiles.in_flight().count() == job.tiles_total
    Collector.objects.filter(pk=waiting.pk).update(storage_error="")  # storage answers again
    recover(now=later)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
