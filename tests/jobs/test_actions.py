"""Cancel, retry and delete, through the API, against the real database and broker."""

import pytest
from django.core.files.storage import default_storage
from PIL import ImageFilter
from rest_framework.test import APIClient

from imagepipe.core.messages import Result
from jobs.collector import record_result
from jobs.models import Job, Tile
from tests.images import photo

from .factories import make_job, result_image
from .test_collector import results_for

pytestmark = pytest.mark.django_db

IMAGE = photo("camera.png").crop((0, 0, 150, 100))  # 6 tiles of 64


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice")


@pytest.fixture
def client(alice):
    client = APIClient()
    client.force_authenticate(alice)
    return client


def test_an_unfinished_job_can_be_cancelled_once(client, alice):
    job = make_job(alice, IMAGE)
    response = client.post(f"/api/jobs/{job.pk}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    again = client.post(f"/api/jobs/{job.pk}/cancel/")
    assert again.status_code == 409 and "only an unfinished job" in again.json()["error"]


def test_results_arriving_after_a_cancel_change_nothing(client, alice):
    job = make_job(alice, IMAGE)
    client.post(f"/api/jobs/{job.pk}/cancel/")
    for value in results_for(job, IMAGE):
        record_result(value)
    job.refresh_from_db()
    assert (job.status, job.tiles_done) == (Job.Status.CANCELLED, 0)


def test_a_retry_re_sends_only_the_tiles_not_done(client, alice, kafka_topics):
    job = make_job(alice, IMAGE)
    Tile.objects.filter(job=job).update(attempts=1)
    for value in results_for(job, IMAGE)[:4]:
        record_result(value)
    client.post(f"/api/jobs/{job.pk}/cancel/")

    response = client.post(f"/api/jobs/{job.pk}/retry/")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["error"]) == ("running", "")
    attempts = dict(Tile.objects.filter(job=job).values_list("index", "attempts"))
    assert attempts == {0: 1, 1: 1, 2: 1, 3: 1, 4: 2, 5: 2}


def test_only_a_failed_or_cancelled_job_can_be_retried(client, alice):
    job = make_job(alice, IMAGE)
    response = client.post(f"/api/jobs/{job.pk}/retry/")
    assert response.status_code == 409 and "only a failed or cancelled job" in response.json()["error"]


def test_a_job_failed_by_a_bad_tile_finishes_identically_after_a_retry(client, alice, kafka_topics):
    job = make_job(alice, IMAGE)
    values = results_for(job, IMAGE)
    for value in values[:5]:
        record_result(value)
    record_result(
        Result(
            job=str(job.pk),
            index=5,
            worker="w",
            duration_ms=1,
            task_partition=0,
            task_offset=0,
            error="MemoryError: out of memory",
        ).encode()
    )
    record_result(values[5])  # too late: the job has failed
    job.refresh_from_db()
    assert (job.status, job.tiles_done) == (Job.Status.FAILED, 5)

    assert client.post(f"/api/jobs/{job.pk}/retry/").status_code == 200
    record_result(values[5])  # the re-sent tile comes back
    job.refresh_from_db()
    assert job.status == Job.Status.DONE
    assert result_image(job).tobytes() == IMAGE.filter(ImageFilter.GaussianBlur(2)).tobytes()


def test_deleting_a_job_removes_its_files(client, alice, django_user_model):
    job = make_job(alice, IMAGE)
    for value in results_for(job, IMAGE):
        record_result(value)
    job.refresh_from_db()
    files = [job.original.name, job.result.name]
    assert all(default_storage.exists(name) for name in files)

    stranger = APIClient()
    stranger.force_authenticate(django_user_model.objects.create_user("bob"))
    assert stranger.delete(f"/api/jobs/{job.pk}/").status_code == 404
    assert client.delete(f"/api/jobs/{job.pk}/").status_code == 204
    assert not Job.objects.filter(pk=job.pk).exists()
    assert not any(default_storage.exists(name) for name in files)


def test_staff_cancel_and_retry_jobs_from_the_admin(alice, django_user_model, kafka_topics):
    from django.test import Client

    job = make_job(alice, IMAGE)
    admin = Client()
    admin.force_login(django_user_model.objects.create_superuser("root", password="x"))
    for action, status in (("cancel_jobs", Job.Status.CANCELLED), ("retry_jobs", Job.Status.QUEUED)):
        response = admin.post("/admin/jobs/job/", {"action": action, "_selected_action": [str(job.pk)]})
        assert response.status_code == 302
        job.refresh_from_db()
        assert job.status == status
