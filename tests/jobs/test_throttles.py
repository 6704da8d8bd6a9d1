"""jobs.throttles: job submission is throttled per user (JOB_SUBMIT_RATE), 429 with a readable message."""

import pytest

from tests.images import noise

from .factories import post_job, upload

pytestmark = pytest.mark.django_db


def test_a_user_over_the_rate_gets_429_and_others_are_unaffected(settings, alice_api, bob_api):
    settings.JOB_SUBMIT_RATE = "2/minute"

    def submit(client):
        return post_job(client, upload(noise(8, 8)))

    assert [submit(alice_api).status_code for _ in range(3)] == [201, 201, 429]
    assert "throttled" in submit(alice_api).json()["error"]
    assert submit(bob_api).status_code == 201
    assert alice_api.get("/api/jobs/").status_code == 200  # reading is not throttled


def test_the_form_is_throttled_too(settings, client, alice):
    settings.JOB_SUBMIT_RATE = "1/minute"
    client.force_login(alice)
    form = {"operations": '[{"op": "invert"}]'}
    assert client.post("/jobs/new/", {"image": upload(noise(8, 8)), **form}).status_code == 302
    response = client.post("/jobs/new/", {"image": upload(noise(8, 8)), **form})
    assert response.status_code == 429 and "too many submissions" in response.content.decode()
