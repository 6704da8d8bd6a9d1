"""jobs.views, the server-rendered pages: login required, owner-scoped, form submission, query counts."""

import pytest

from jobs.models import Job
from pipeline.collector import record_result
from tests.images import noise
from tests.queries import list_page_queries, queries

from .factories import make_job, results_for, upload

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/", "/jobs/new/", "/workers/"])
def test_pages_redirect_anonymous_users_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_login_page_is_public(client):
    assert client.get("/accounts/login/").status_code == 200


def test_history_lists_only_the_users_jobs(client, alice, bob):
    make_job(alice, noise(10, 10)), make_job(bob, noise(10, 10))
    Job.objects.filter(owner=bob).update(original_name="bobs-secret.png")
    client.force_login(alice)
    page = client.get("/").content.decode()
    assert "photo.png" in page and "bobs-secret.png" not in page


def test_another_users_job_page_is_not_found(client, alice, bob):
    job = make_job(bob, noise(10, 10))
    client.force_login(alice)
    assert client.get(f"/jobs/{job.pk}/").status_code == 404
    client.force_login(bob)
    assert client.get(f"/jobs/{job.pk}/").status_code == 200


def test_the_form_creates_a_job_and_redirects_to_it(client, alice):
    client.force_login(alice)
    response = client.post(
        "/jobs/new/", {"image": upload(noise(64, 64)), "tile_size": 32, "operations": '[{"op": "grayscale"}]'}
    )
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert job.tiles_total == 4


def test_the_form_shows_upload_errors(client, alice):
    client.force_login(alice)
    response = client.post("/jobs/new/", {"image": upload(noise(30, 30)), "operations": '[{"op": "x"}]'})
    assert response.status_code == 400
    assert "unknown operation" in response.content.decode()
    assert not Job.objects.exists()


def test_history_filters_by_status_and_file_name(client, alice):
    first, second = make_job(alice, noise(10, 10)), make_job(alice, noise(10, 10))
    Job.objects.filter(pk=first.pk).update(original_name="sunset.png")
    Job.objects.filter(pk=second.pk).update(original_name="harbour.png", status=Job.Status.FAILED)
    client.force_login(alice)
    assert "harbour.png" in (page := client.get("/?status=failed").content.decode())
    assert "sunset.png" not in page
    found = client.get("/?q=SUN").content.decode()
    assert "sunset.png" in found and "harbour.png" not in found


def test_a_list_page_does_not_query_per_row(admin_client):
    few, many = list_page_queries(admin_client, "/")
    assert many == few


def test_the_job_page_costs_a_fixed_number_of_queries(client, alice):
    client.force_login(alice)
    small, large = (
        make_job(alice, noise(20, 20), tile_size=16),
        make_job(alice, noise(200, 200), tile_size=16),
    )
    assert queries(client, f"/jobs/{small.pk}/") == queries(client, f"/jobs/{large.pk}/")


def test_downloads_are_named_after_the_uploaded_file(client, alice):
    job = make_job(alice, noise(64, 48), tile_size=32)
    Job.objects.filter(pk=job.pk).update(original_name="Rocket launch é.jpg")
    for value in results_for(job, noise(64, 48)):
        record_result(value)
    client.force_login(alice)
    result = client.get(f"/api/jobs/{job.pk}/result/")
    assert result["Content-Disposition"] == (
        "attachment; filename*=utf-8''Rocket%20launch%20%C3%A9-imagepipe.png"
    )
    original = client.get(f"/api/jobs/{job.pk}/original/")
    assert original["Content-Disposition"] == "attachment; filename*=utf-8''Rocket%20launch%20%C3%A9.jpg"
