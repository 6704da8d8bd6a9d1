"""Nobody reaches what isn't theirs: 404 for another user's job, 401 or a login redirect for anonymous."""

import pytest
from rest_framework.test import APIClient

from jobs.collector import record_result
from jobs.models import Job
from tests.images import photo

from .factories import make_job
from .test_collector import results_for

pytestmark = pytest.mark.django_db

IMAGE = photo("camera.png").crop((0, 0, 100, 60))


@pytest.fixture
def job(django_user_model):
    job = make_job(django_user_model.objects.create_user("alice"), IMAGE)
    for value in results_for(job, IMAGE)[:1]:
        record_result(value)  # one tile stored, so its preview exists too
    return job


def job_urls(job):
    api = f"/api/jobs/{job.pk}/"
    return [
        ("get", api),
        ("get", f"{api}result/"),
        ("get", f"{api}original/"),
        ("get", f"{api}tiles/"),
        ("get", f"{api}tiles/0/0/preview/"),
        ("get", f"{api}preview/original/"),
        ("get", f"{api}preview/result/"),
        ("post", f"{api}cancel/"),
        ("post", f"{api}retry/"),
        ("delete", api),
    ]


def test_another_user_gets_404_for_every_job_url(job, django_user_model):
    bob = APIClient()
    bob.force_login(django_user_model.objects.create_user("bob"))  # a session: pages and API alike
    for method, url in job_urls(job) + [("get", f"/jobs/{job.pk}/")]:
        response = getattr(bob, method)(url)
        assert response.status_code == 404, (method, url, response.status_code)
    assert bob.get("/api/jobs/").json()["count"] == 0
    assert Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).exists()  # untouched


def test_the_owner_and_staff_reach_the_same_urls(job, django_user_model):
    for user in (job.owner, django_user_model.objects.create_user("root", is_staff=True)):
        client = APIClient()
        client.force_authenticate(user)
        for method, url in job_urls(job)[:7]:
            assert getattr(client, method)(url).status_code in (200, 409), (user, url)


def test_anonymous_requests_get_401_from_the_api_and_a_login_redirect_from_pages(job, client):
    anonymous = APIClient()
    api_urls = job_urls(job) + [
        ("get", "/api/jobs/"),
        ("post", "/api/jobs/"),
        ("get", "/api/workers/"),
        ("get", "/api/operations/"),
        ("get", "/api/system/"),
        ("get", "/api/schema/"),
        ("get", "/api/docs/"),
    ]
    for method, url in api_urls:
        assert getattr(anonymous, method)(url).status_code == 401, (method, url)
    for url in ("/", "/jobs/new/", f"/jobs/{job.pk}/", "/workers/", "/admin/"):
        response = client.get(url)
        assert response.status_code == 302 and "login" in response["Location"], url


def test_login_and_health_are_open_to_all(client):
    assert client.get("/accounts/login/").status_code == 200
    response = client.get("/health/")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_job_ids_in_urls_are_not_guessable(job):
    assert len(str(job.pk)) == 36 and str(job.pk).count("-") == 4
    assert job.original.name == f"originals/{job.pk}.png"  # served only through the authorised view
