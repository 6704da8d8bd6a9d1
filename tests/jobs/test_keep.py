"""The keep flag (retention spares a kept job: tests/pipeline/test_retention.py): set by its owner
or staff through POST /api/jobs/{id}/keep/, the job's page and the admin; nobody else's to set."""

import pytest
from rest_framework.test import APIClient

from jobs.models import Job

pytestmark = pytest.mark.django_db


def keep(client, job, value):
    return client.post(f"/api/jobs/{job.pk}/keep/", {"keep": value}, format="json")


def test_the_owner_keeps_a_job_and_lets_it_go_again(alice_api, job):
    response = keep(alice_api, job, True)
    assert response.status_code == 200 and response.json()["keep"] is True
    assert Job.objects.get(pk=job.pk).keep
    assert keep(alice_api, job, False).json()["keep"] is False
    assert not Job.objects.get(pk=job.pk).keep


@pytest.mark.parametrize("value", ["maybe", None, 2])
def test_anything_but_a_boolean_is_refused_with_the_reason(alice_api, job, value):
    response = keep(alice_api, job, value)
    assert response.status_code == 400 and response.json()["error"].startswith("keep:")
    assert not Job.objects.get(pk=job.pk).keep


def test_another_user_cannot_keep_it_and_staff_can(bob_api, staff, job):
    assert keep(bob_api, job, True).status_code == 404
    staff_api = APIClient()
    staff_api.force_authenticate(staff)
    assert keep(staff_api, job, True).status_code == 200
    assert Job.objects.get(pk=job.pk).keep


def test_the_jobs_page_shows_the_flag_and_the_retention(client, alice, job, settings):
    settings.JOB_RETENTION_DAYS = 30
    client.force_login(alice)
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert '<input id="keep" type="checkbox" >' in page and "30 days after it ends" in page
    Job.objects.filter(pk=job.pk).update(keep=True)
    assert '<input id="keep" type="checkbox" checked>' in client.get(f"/jobs/{job.pk}/").content.decode()


def test_staff_keep_a_job_from_the_admin(admin_client, job):
    admin_client.post(f"/admin/jobs/job/{job.pk}/change/", {"priority": job.priority, "keep": "on"})
    assert Job.objects.get(pk=job.pk).keep
