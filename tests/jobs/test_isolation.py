"""Nobody reaches what isn't theirs: 404 for another user's job, 401 or a login redirect for anonymous.

The jobs app's one cross-cutting test file: access control over the API and the pages together, not
the tests of one module (the websocket's own check is in test_consumers.py).
"""

import uuid

import pytest
from rest_framework.test import APIClient

from jobs.models import Job
from pipeline.collector import record_result
from pipeline.stages import stage_input

from .factories import SMALL_PHOTO, make_job, results_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def running_job(job):
    """The shared job started (the dispatcher made its original's previews) with one tile stored, so
    its tile preview exists too."""
    stage_input(job, 0)
    record_result(results_for(job, SMALL_PHOTO)[0])
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


def test_another_user_gets_404_for_every_job_url(running_job, bob):
    job = running_job
    bob_session = APIClient()
    bob_session.force_login(bob)  # a session: pages and API alike
    for method, url in job_urls(job) + [("get", f"/jobs/{job.pk}/")]:
        response = getattr(bob_session, method)(url)
        assert response.status_code == 404, (method, url, response.status_code)
    assert bob_session.get("/api/jobs/").json()["count"] == 0
    assert Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).exists()  # untouched


def test_the_owner_and_staff_reach_the_same_urls(running_job, staff):
    api = f"/api/jobs/{running_job.pk}/"
    expected = {  # the job runs: it has no result yet
        api: 200,
        f"{api}result/": 409,
        f"{api}original/": 200,
        f"{api}tiles/": 200,
        f"{api}tiles/0/0/preview/": 200,
        f"{api}preview/original/": 200,
        f"{api}preview/result/": 409,
    }
    reads = [url for method, url in job_urls(running_job) if method == "get"]
    for user in (running_job.owner, staff):
        client = APIClient()
        client.force_authenticate(user)
        assert {url: client.get(url).status_code for url in reads} == expected, user


def test_anonymous_requests_get_401_from_the_api_and_a_login_redirect_from_pages(running_job, client):
    anonymous = APIClient()
    api_urls = job_urls(running_job) + [
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
    for url in ("/", "/jobs/new/", f"/jobs/{running_job.pk}/", "/workers/", "/admin/"):
        response = client.get(url)
        assert response.status_code == 302 and "login" in response["Location"], url


def test_login_and_health_are_open_to_all(client):
    assert client.get("/accounts/login/").status_code == 200
    response = client.get("/health/")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_job_ids_in_urls_are_not_guessable(job, alice_api, client):
    """Random (version 4) UUIDs, a new one per job; one nobody holds is not found, even by its guesser."""
    second = make_job(job.owner, SMALL_PHOTO)
    assert (job.pk.version, second.pk.version) == (4, 4) and job.pk != second.pk
    assert job.original.name == f"originals/{job.pk}.png"  # served only through the authorised view
    unknown = uuid.uuid4()
    assert alice_api.get(f"/api/jobs/{unknown}/").status_code == 404
    client.force_login(job.owner)
    assert client.get(f"/jobs/{unknown}/").status_code == 404
