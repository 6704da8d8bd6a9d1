"""A job's phase timings: never negative, timed afresh on retry, no assembly for a job that never
got there, and the phase under way counted up to now."""

from datetime import timedelta
from typing import cast

import pytest
from django.utils import timezone

from jobs import actions
from jobs.models import Job
from tests.images import noise

from .factories import make_job

pytestmark = pytest.mark.django_db

T0 = timezone.now() - timedelta(minutes=10)  # the marks lie in the past, as a job's do


def at(seconds: float):
    return T0 + timedelta(seconds=seconds)


def job_with(alice, **marks) -> Job:
    job = make_job(alice, noise(32, 32), tile_size=16)
    Job.objects.filter(pk=job.pk).update(created_at=T0, **marks)
    job.refresh_from_db()
    return job


def test_a_finished_job_has_three_phases_end_to_end(alice):
    job = job_with(
        alice,
        status="done",
        dispatched_at=at(0.2),
        started_at=at(0.5),
        last_tile_at=at(3),
        finished_at=at(3.5),
    )
    assert job.timings() == {"queued": 0.2, "processing": 2.8, "assembling": 0.5}
    assert job.phase is None
    assert sum(cast(dict[str, float], job.timings()).values()) == pytest.approx(job.duration)  # all set


def test_the_phase_under_way_counts_up_to_now(alice):
    job = job_with(alice, status="running", dispatched_at=at(1), started_at=at(2), last_tile_at=at(4))
    assert job.phase == "processing"
    assert job.timings(now=at(10)) == {"queued": 1.0, "processing": 9.0, "assembling": None}
    queued = job_with(alice, status="queued")
    assert queued.phase == "queued" and queued.timings(now=at(2)) == {
        "queued": 2.0,
        "processing": None,
        "assembling": None,
    }


def test_a_cancelled_job_never_assembled(alice):
    job = job_with(
        alice,
        status="cancelled",
        dispatched_at=at(1),
        started_at=at(2),
        last_tile_at=at(4),
        finished_at=at(6),
    )
    assert job.timings() == {"queued": 1.0, "processing": 5.0, "assembling": None}


def test_no_phase_is_negative_whatever_order_the_marks_came_in(alice):
    # The first tile recorded a moment before the dispatcher marked the job sent.
    job = job_with(alice, status="running", dispatched_at=at(2), started_at=at(1.97), last_tile_at=at(1.97))
    assert all(seconds is None or seconds >= 0 for seconds in job.timings(now=at(3)).values())


def test_a_retry_times_its_run_afresh(alice):
    job = job_with(
        alice, status="running", dispatched_at=at(0.3), started_at=at(0.6), last_tile_at=at(1), tiles_done=1
    )
    job.cancel()  # (actions.cancel would also tell the workers through the broker)
    Job.objects.filter(pk=job.pk).update(finished_at=at(2))
    job.refresh_from_db()
    assert actions.retry(job)  # minutes later, as a user would
    job.refresh_from_db()
    assert job.queued_at is not None
    assert job.queued_at > at(2) and job.created_at == T0
    assert (job.dispatched_at, job.started_at, job.last_tile_at, job.finished_at) == (None, None, None, None)
    timings = job.timings(now=job.queued_at + timedelta(seconds=0.4))
    assert timings == {"queued": 0.4, "processing": None, "assembling": None}
