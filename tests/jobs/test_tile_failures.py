"""A tile a worker gave up on: recorded on the tile, told to the job's page, shown by the tile API."""

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs import actions
from jobs.models import Job, Tile
from pipeline.collector import COUNTS, record_result, record_results
from pipeline.dispatch import task_messages
from pipeline.messages import Result, Task
from pipeline.worker import process_task
from tests.events import listening, next_message

from .factories import SMALL_PHOTO, result_image, results_for, sent

pytestmark = pytest.mark.django_db


def torn(job, index: int, worker: str = "w7") -> bytes:
    """Tile ``index`` with torn pixels through the real worker code: it fails twice, then reports."""
    _, value = list(task_messages(job, SMALL_PHOTO, 0, nonce=sent(job.pk)))[index]
    task, _ = Task.decode(value)
    result, payload = process_task(task, b"IPT1 torn pixels", worker, 3, 40 + index, attempts=2)
    return result.encode(payload)


def test_a_failed_tile_is_recorded_with_the_workers_reason_and_fails_its_job(job):
    record_result(torn(job, 2))
    tile = Tile.objects.get(job=job, index=2)
    assert (tile.state, tile.worker, tile.partition, tile.offset) == (Tile.State.FAILED, "w7", 3, 42)
    assert tile.error.startswith("failed 2 times: CodecError")
    assert tile.duration_ms is not None and tile.finished_at is not None
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error == f"tile 2 failed on w7: {tile.error}"
    assert set(job.tiles.exclude(index=2).values_list("state", flat=True)) == {Tile.State.QUEUED}


def test_a_replayed_failure_changes_nothing_twice(job):
    failure = torn(job, 2)
    before = COUNTS.copy()
    record_result(failure)
    recorded = Tile.objects.get(job=job, index=2)
    record_result(failure)
    assert Tile.objects.get(job=job, index=2).finished_at == recorded.finished_at
    assert (COUNTS["tiles_failed"] - before["tiles_failed"], COUNTS["late"] - before["late"]) == (1, 1)


def test_a_failure_for_a_tile_already_done_neither_overwrites_it_nor_fails_the_job(job):
    record_result(results_for(job, SMALL_PHOTO)[0])
    record_result(torn(job, 0))
    tile = Tile.objects.get(job=job, index=0)
    assert (tile.state, tile.error, tile.worker) == (Tile.State.DONE, "", "w0")
    job.refresh_from_db()
    assert (job.status, job.error) == (Job.Status.RUNNING, "")


def test_every_failure_of_a_batch_is_recorded_and_its_other_tiles_come_too_late(job):
    done = results_for(job, SMALL_PHOTO)
    record_results([Result.decode(torn(job, 1)), Result.decode(done[0]), Result.decode(torn(job, 4, "w8"))])
    states = dict(job.tiles.values_list("index", "state"))
    assert [states[index] for index in (0, 1, 4)] == [Tile.State.QUEUED, Tile.State.FAILED, "failed"]
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.error.startswith("tile 1 failed on w7")
    assert job.tiles_done == 0


def test_the_page_hears_the_failed_tile_then_the_failed_job(job):
    channel = listening(job.group_name)
    record_result(torn(job, 3))
    tile = next_message(channel)["event"]
    assert {k: tile[k] for k in ("type", "state", "stage", "index", "worker", "partition", "offset")} == {
        "type": "tile",
        "state": "failed",
        "stage": 0,
        "index": 3,
        "worker": "w7",
        "partition": 3,
        "offset": 43,
    }
    assert tile["error"].startswith("failed 2 times: CodecError")
    assert len(tile["place"]) == 4 and tile["tiles_done"] == 0
    status = next_message(channel)["event"]
    assert (status["type"], status["status"]) == ("status", "failed")
    assert status["error"].startswith("tile 3 failed on w7")


def test_a_retry_sends_a_failed_tile_again_and_the_job_finishes(job):
    record_result(torn(job, 5))
    assert actions.retry(job)
    tile = Tile.objects.get(job=job, index=5)
    assert (tile.state, tile.error, tile.worker, tile.dispatched_at) == (Tile.State.QUEUED, "", "", None)
    assert job.tiles.queued().count() == 6
    for value in results_for(job, SMALL_PHOTO):
        record_result(value)
    job.refresh_from_db()
    assert job.status == Job.Status.DONE
    assert result_image(job).size == SMALL_PHOTO.size


# The tile detail API: GET /api/jobs/{id}/tiles/{stage}/{index}/


def tile_url(job, index: int, stage: int = 0) -> str:
    return f"/api/jobs/{job.pk}/tiles/{stage}/{index}/"


def test_a_failed_tile_tells_its_whole_story(job, alice_api):
    Tile.objects.filter(job=job, index=2).update(
        state=Tile.State.SENT, attempts=2, dispatched_at=timezone.now()
    )
    record_result(torn(job, 2))
    body = alice_api.get(tile_url(job, 2)).json()
    assert {k: body[k] for k in ("stage", "index", "col", "row", "state", "attempts", "retried")} == {
        "stage": 0,
        "index": 2,
        "col": 2,
        "row": 0,
        "state": "failed",
        "attempts": 2,
        "retried": True,
    }
    assert (body["worker"], body["partition"], body["offset"]) == ("w7", 3, 42)
    assert body["error"].startswith("failed 2 times: CodecError")
    assert body["dispatched_at"] and body["finished_at"] and body["duration_ms"] is not None
    assert (body["x"], body["y"], body["width"], body["height"]) == (128, 0, 22, 64)
    assert body["place"] == [128, 0, 22, 64] and body["canvas"] == [150, 100]


@pytest.mark.parametrize(
    ("attempts", "sent", "state", "retried"),
    [(0, False, "queued", False), (1, True, "sent", False), (2, True, "sent", True)],
)
def test_a_tile_not_back_yet_is_queued_or_sent(job, alice_api, attempts, sent, state, retried):
    sent_at = timezone.now() - timedelta(seconds=3) if sent else None
    Tile.objects.filter(job=job, index=1).update(state=state, attempts=attempts, dispatched_at=sent_at)
    body = alice_api.get(tile_url(job, 1)).json()
    assert (body["state"], body["retried"]) == (state, retried)
    assert body["finished_at"] is None and body["error"] == ""


def test_a_done_tile_names_its_worker_and_duration(job, alice_api):
    record_result(results_for(job, SMALL_PHOTO)[4])
    body = alice_api.get(tile_url(job, 4)).json()
    assert (body["state"], body["worker"], body["error"]) == ("done", "w0", "")
    assert body["duration_ms"] is not None and body["finished_at"]


def test_only_the_owner_and_staff_see_a_tile(job, bob_api, staff, client):
    assert bob_api.get(tile_url(job, 0)).status_code == 404
    client.force_login(staff)
    assert client.get(tile_url(job, 0)).json()["index"] == 0
    client.logout()
    assert client.get(tile_url(job, 0)).status_code in (401, 403)


def test_a_tile_that_does_not_exist_is_404(job, alice_api):
    assert alice_api.get(tile_url(job, 6)).status_code == 404
    assert alice_api.get(tile_url(job, 0, stage=1)).status_code == 404
