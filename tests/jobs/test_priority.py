"""Priority: high goes before fairness between users, so only staff may ask for it, at submission
or later (POST /api/jobs/{id}/priority/); low and normal are anyone's."""

import pytest
from rest_framework.test import APIClient

from jobs.models import Job
from tests.images import noise

from .factories import post_job, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_api(staff) -> APIClient:
    client = APIClient()
    client.force_authenticate(staff)
    return client


@pytest.mark.parametrize("priority", ["low", "normal"])
def test_anyone_may_submit_at_low_or_normal_priority(alice_api, priority):
    response = post_job(alice_api, upload(noise(8, 8)), priority=priority)
    assert response.status_code == 201 and response.json()["priority"] == priority


def test_high_priority_is_refused_to_a_user_and_granted_to_staff(alice_api, staff_api):
    refused = post_job(alice_api, upload(noise(8, 8)), priority="high")
    assert refused.status_code == 403 and "priority high is for staff" in refused.json()["error"]
    assert not Job.objects.exists()  # nothing stored
    granted = post_job(staff_api, upload(noise(8, 8)), priority="high")
    assert granted.status_code == 201 and granted.json()["priority"] == "high"


def test_a_user_cannot_raise_their_job_to_high_but_staff_can(alice_api, staff_api, job):
    url = f"/api/jobs/{job.pk}/priority/"
    refused = alice_api.post(url, {"priority": "high"}, format="json")
    assert refused.status_code == 403 and "priority high is for staff" in refused.json()["error"]
    assert alice_api.post(url, {"priority": "low"}, format="json").json()["priority"] == "low"
    assert staff_api.post(url, {"priority": "high"}, format="json").json()["priority"] == "high"
    assert alice_api.post(url, {"priority": "urgent"}, format="json").status_code == 400
