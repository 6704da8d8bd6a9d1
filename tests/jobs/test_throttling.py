"""Job submission is throttled per user (JOB_SUBMIT_RATE): 429 with a readable message."""

import pytest
from rest_framework.test import APIClient

from tests.images import noise

from .factories import upload

pytestmark = pytest.mark.django_db


def test_a_user_over_the_rate_gets_429_and_others_are_unaffected(settings, django_user_model):
    settings.JOB_SUBMIT_RATE = "2/minute"
    alice, bob = APIClient(), APIClient()
    alice.force_authenticate(django_user_model.objects.create_user("alice"))
    bob.force_authenticate(django_user_model.objects.create_user("bob"))

    def submit(client):
        return client.post(
            "/api/jobs/",
            {"image": upload(noise(8, 8)), "operations": '[{"op": "invert"}]'},
            format="multipart",
        )

    assert [submit(alice).status_code for _ in range(3)] == [201, 201, 429]
    assert "throttled" in submit(alice).json()["error"]
    assert submit(bob).status_code == 201
    assert alice.get("/api/jobs/").status_code == 200  # reading is not throttled


def test_the_form_is_throttled_too(settings, client, django_user_model):
    settings.JOB_SUBMIT_RATE = "1/minute"
    client.force_login(django_user_model.objects.create_user("carol"))
    form = {"operations": '[{"op": "invert"}]'}
    assert client.post("/jobs/new/", {"image": upload(noise(8, 8)), **form}).status_code == 302
    response = client.post("/jobs/new/", {"image": upload(noise(8, 8)), **form})
    assert response.status_code == 429 and "too many submissions" in response.content.decode()
