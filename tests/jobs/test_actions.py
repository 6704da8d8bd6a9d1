"""jobs.actions (cancel, retry, delete) through the API and the admin, on the real database and broker."""

from unittest.mock import ANY

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import ImageFilter

from jobs.events import status_event
from jobs.models import Job, PendingCancellation, Tile
from pipeline import kafka
from pipeline.collector import record_result
from tests.events import listening, next_message
from tests.topics import all_records

from .factories import SMALL_PHOTO, failed_result, result_image, results_for

pytestmark = pytest.mark.django_db


def test_an_unfinished_job_can_be_cancelled_once(alice_api, job, kafka_topics):
    response = alice_api.post(f"/api/jobs/{job.pk}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    again = alice_api.post(f"/api/jobs/{job.pk}/cancel/")
    assert again.status_code == 409 and "only an unfinished job" in again.json()["error"]


def test_results_arriving_after_a_cancel_change_nothing(alice_api, job, kafka_topics):
    alice_api.post(f"/api/jobs/{job.pk}/cancel/")
    for value in results_for(job, SMALL_PHOTO):
        record_result(value)
    job.refresh_from_db()
    assert (job.status, job.tiles_done) == (Job.Status.CANCELLED, 0)


def test_a_retry_re_sends_only_the_tiles_not_done(kafka_topics, alice_api, job):
    Tile.objects.filter(job=job).update(state=Tile.State.SENT, attempts=1, dispatched_at=timezone.now())
    for value in results_for(job, SMALL_PHOTO)[:4]:
        record_result(value)
    alice_api.post(f"/api/jobs/{job.pk}/cancel/")

    response = alice_api.post(f"/api/jobs/{job.pk}/retry/")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["error"]) == ("running", "")
    assert set(job.tiles.queued().values_list("index", flat=True)) == {4, 5}  # for the dispatcher
    assert set(job.tiles.done().values_list("index", flat=True)) == {0, 1, 2, 3}


def test_only_a_failed_or_cancelled_job_can_be_retried(alice_api, job, kafka_topics):
    response = alice_api.post(f"/api/jobs/{job.pk}/retry/")
    assert response.status_code == 409 and "only a failed or cancelled job" in response.json()["error"]


def test_a_job_failed_by_a_bad_tile_finishes_identically_after_a_retry(kafka_topics, alice_api, job):
    values = results_for(job, SMALL_PHOTO)
    for value in values[:5]:
        record_result(value)
    record_result(failed_result(job.pk, 5, "MemoryError: out of memory"))
    record_result(values[5])  # too late: the job has failed
    job.refresh_from_db()
    assert (job.status, job.tiles_done) == (Job.Status.FAILED, 5)

    assert alice_api.post(f"/api/jobs/{job.pk}/retry/").status_code == 200
    record_result(values[5])  # the re-sent tile comes back
    job.refresh_from_db()
    assert job.status == Job.Status.DONE
    assert result_image(job).tobytes() == SMALL_PHOTO.filter(ImageFilter.GaussianBlur(2)).tobytes()


def test_a_retried_job_whose_tiles_are_all_in_is_assembled_by_the_dispatcher_not_the_request(
    dispatcher, alice_api, job, monkeypatch
):
    def storage_down(job):
        raise OSError("the result's storage is away")

    with monkeypatch.context() as patched:
        patched.setattr("pipeline.assembly._store_result", storage_down)
        for value in results_for(job, SMALL_PHOTO):
            record_result(value)
    job.refresh_from_db()
    assert (job.status, job.tiles_done) == (Job.Status.FAILED, job.tiles_total)

    response = alice_api.post(f"/api/jobs/{job.pk}/retry/")
    assert response.status_code == 200 and response.json()["status"] == "running"
    job.refresh_from_db()
    assert not job.result  # the request encoded nothing

    assert dispatcher.step() == 0  # no tile to send: it assembles
    job.refresh_from_db()
    assert job.status == Job.Status.DONE
    assert result_image(job).tobytes() == SMALL_PHOTO.filter(ImageFilter.GaussianBlur(2)).tobytes()


def finished(job) -> list[str]:
    """Finish the job from its real results; the names of its stored files, all present."""
    for value in results_for(job, SMALL_PHOTO):
        record_result(value)
    job.refresh_from_db()
    files = [job.original.name, job.result.name]
    assert all(default_storage.exists(name) for name in files)
    return files


def test_deleting_a_job_removes_its_files_once_the_row_has_gone(
    alice_api, bob_api, job, django_capture_on_commit_callbacks
):
    files = finished(job)

    assert bob_api.delete(f"/api/jobs/{job.pk}/").status_code == 404
    with django_capture_on_commit_callbacks() as deletions:
        assert alice_api.delete(f"/api/jobs/{job.pk}/").status_code == 204
    assert not Job.objects.filter(pk=job.pk).exists()
    assert all(default_storage.exists(name) for name in files)  # until the deletion commits
    for deletion in deletions:
        deletion()
    assert not any(default_storage.exists(name) for name in files)


@pytest.mark.parametrize(
    "form",
    [
        pytest.param(lambda job: (f"/admin/jobs/job/{job.pk}/delete/", {"post": "yes"}), id="delete_model"),
        pytest.param(
            lambda job: (
                "/admin/jobs/job/",
                {"action": "delete_selected", "_selected_action": [str(job.pk)], "post": "yes"},
            ),
            id="delete_queryset",
        ),
    ],
)
def test_deleting_a_job_from_the_admin_removes_its_files_too(
    admin_client, job, form, django_capture_on_commit_callbacks
):
    files = finished(job)
    url, data = form(job)
    with django_capture_on_commit_callbacks(execute=True):
        assert admin_client.post(url, data).status_code == 302
    assert not Job.objects.filter(pk=job.pk).exists()
    assert not any(default_storage.exists(name) for name in files)


def test_staff_cancel_and_retry_jobs_from_the_admin(kafka_topics, admin_client, job):
    for action, status in (("cancel_jobs", Job.Status.CANCELLED), ("retry_jobs", Job.Status.QUEUED)):
        response = admin_client.post(
            "/admin/jobs/job/", {"action": action, "_selected_action": [str(job.pk)]}
        )
        assert response.status_code == 302
        job.refresh_from_db()
        assert job.status == status


def cancel_by_api(job, alice_api, admin_client):
    assert alice_api.post(f"/api/jobs/{job.pk}/cancel/").status_code == 200


def cancel_in_the_admin(job, alice_api, admin_client):
    form = {"action": "cancel_jobs", "_selected_action": [str(job.pk)]}
    assert admin_client.post("/admin/jobs/job/", form).status_code == 302


def delete_by_api(job, alice_api, admin_client):
    assert alice_api.delete(f"/api/jobs/{job.pk}/").status_code == 204


@pytest.mark.parametrize("way", [cancel_by_api, cancel_in_the_admin, delete_by_api])
def test_every_way_to_cancel_a_running_job_has_the_same_side_effects(
    dispatcher, alice_api, admin_client, job, way
):
    record_result(results_for(job, SMALL_PHOTO)[0])
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING
    running = status_event(job)
    channel = listening(job.group_name)

    way(job, alice_api, admin_client)

    cancelled = {**running, "status": "cancelled", "error": "cancelled by the user", "finished_at": ANY}
    cancelled.update(timings=ANY, phase=None)
    assert next_message(channel) == {"type": "job.event", "event": cancelled}  # the job's page hears
    # The request only wrote what the workers are to be told; the dispatcher tells them.
    assert list(PendingCancellation.objects.values_list("job_id", "generation")) == [(job.pk, job.generation)]
    assert all_records(kafka.CANCELLATIONS) == []
    assert dispatcher.tell_cancellations() == 1
    (record,) = all_records(kafka.CANCELLATIONS)  # the workers drop its queued tiles
    assert (record.key(), record.value()) == (str(job.pk).encode(), str(job.generation).encode())
    assert not PendingCancellation.objects.exists()
    remaining = Job.objects.filter(pk=job.pk).values_list("status", flat=True)
    assert list(remaining) == ([] if way is delete_by_api else [Job.Status.CANCELLED])
