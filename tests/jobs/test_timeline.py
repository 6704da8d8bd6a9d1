"""GET /api/timeline/: which worker did which tiles when, per job (its owner or staff) and across the
system (staff: every job; other users: their own), bounded, with tiles finished per bucket."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from jobs import timeline
from jobs.models import Job, Tile
from tests.images import noise

from .factories import make_job

pytestmark = pytest.mark.django_db


def record(job, worker: str, indexes, seconds_ago: float, duration_ms: int = 250):
    """The job's tiles ``indexes`` recorded as done by ``worker`` that many seconds ago."""
    at = timezone.now() - timedelta(seconds=seconds_ago)
    Job.objects.filter(pk=job.pk, created_at__gt=at).update(created_at=at - timedelta(seconds=1))
    Tile.objects.filter(job=job, index__in=indexes).update(
        state=Tile.State.DONE, worker=worker, finished_at=at, duration_ms=duration_ms
    )
    return at


def test_a_jobs_spans_end_when_recorded_and_start_their_duration_before(alice_api, job):
    first = record(job, "w2", [0, 1], seconds_ago=3, duration_ms=400)
    last = record(job, "w1", [2], seconds_ago=1)
    body = alice_api.get(f"/api/timeline/?job={job.pk}").json()

    assert body["workers"] == [{"id": "w1", "tiles": 1}, {"id": "w2", "tiles": 2}]
    assert [(s["worker"], s["index"], s["stage"], s["job"]) for s in body["spans"]] == [
        ("w2", 0, 0, str(job.pk)),
        ("w2", 1, 0, str(job.pk)),
        ("w1", 2, 0, str(job.pk)),
    ]
    span = body["spans"][0]
    assert span["end"] == first.isoformat().replace("+00:00", "Z")
    assert span["start"] == (first - timedelta(milliseconds=400)).isoformat().replace("+00:00", "Z")
    assert body["spans"][-1]["end"] == last.isoformat().replace("+00:00", "Z")
    assert not body["truncated"]
    assert sum(bucket["tiles"] for bucket in body["throughput"]) == 3


def test_a_jobs_timeline_is_its_owners_and_staffs_only(alice_api, bob_api, job, staff):
    record(job, "w1", [0], seconds_ago=1)
    assert bob_api.get(f"/api/timeline/?job={job.pk}").status_code == 404
    staff_api = APIClient()
    staff_api.force_authenticate(staff)
    assert len(staff_api.get(f"/api/timeline/?job={job.pk}").json()["spans"]) == 1


def test_the_systems_timeline_is_every_job_for_staff_and_their_own_for_others(
    alice_api, bob_api, job, bob, staff
):
    record(job, "w1", [0, 1], seconds_ago=2)
    record(make_job(bob, noise(64, 64)), "w2", [0], seconds_ago=2)
    staff_api = APIClient()
    staff_api.force_authenticate(staff)

    def workers(api):
        return {w["id"]: w["tiles"] for w in api.get("/api/timeline/").json()["workers"]}

    assert workers(staff_api) == {"w1": 2, "w2": 1}
    assert workers(alice_api) == {"w1": 2}
    assert workers(bob_api) == {"w2": 1}


def test_the_window_leaves_out_older_tiles_and_counts_per_bucket(alice_api, job):
    record(job, "w1", [0], seconds_ago=200)
    record(job, "w1", [1, 2], seconds_ago=50)
    record(job, "w1", [3], seconds_ago=5)
    body = alice_api.get("/api/timeline/?seconds=60").json()

    assert [s["index"] for s in body["spans"]] == [1, 2, 3]
    assert body["bucket_seconds"] == 1 and len(body["throughput"]) == 60
    counts = [bucket["tiles"] for bucket in body["throughput"]]
    assert sum(counts) == 3 and counts[9:11] in ([2, 0], [0, 2]) and counts[54:56] in ([1, 0], [0, 1])


def test_the_spans_are_bounded_to_the_latest(alice_api, job, monkeypatch):
    monkeypatch.setattr(timeline, "MAX_SPANS", 2)
    for index in range(4):
        record(job, "w1", [index], seconds_ago=10 - index)
    body = alice_api.get(f"/api/timeline/?job={job.pk}").json()
    assert [s["index"] for s in body["spans"]] == [2, 3]
    assert body["truncated"] and body["max_spans"] == 2
    assert body["workers"] == [{"id": "w1", "tiles": 4}]  # counted over all of them


@pytest.mark.parametrize("query", ["seconds=0", f"seconds={timeline.MAX_SECONDS + 1}", "job=nope"])
def test_parameters_out_of_bounds_are_refused(alice_api, query):
    assert alice_api.get(f"/api/timeline/?{query}").status_code == 400


def test_anonymous_requests_are_refused(client):
    assert client.get("/api/timeline/").status_code in (401, 403)


def test_tiles_per_second_counts_each_workers_recorded_tiles_over_the_last_ten_seconds(job):
    record(job, "w1", [0, 1, 2, 3], seconds_ago=3)
    record(job, "w2", [4], seconds_ago=9)
    record(job, "w2", [5], seconds_ago=30)
    assert timeline.tiles_per_second() == {"w1": 0.4, "w2": 0.1}
