"""jobs.admin: list pages that cost the same number of queries for 3 rows as for
30; rows the pipeline writes are shown, never added or changed; links that lead somewhere (its
actions are tested with jobs.actions, in test_actions.py)."""

import re

import pytest
from django.urls import reverse

from jobs.models import Job, Upload
from tests.images import noise
from tests.queries import list_page_queries

from .factories import make_job

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/admin/jobs/job/", "/admin/jobs/tile/"])
def test_a_list_page_does_not_query_per_row(admin_client, url):
    few, many = list_page_queries(admin_client, url)
    assert many == few


@pytest.mark.parametrize("model", ["jobs/job", "jobs/tile", "jobs/upload"])
def test_nothing_can_be_added_by_hand(admin_client, model):
    assert admin_client.get(f"/admin/{model}/add/").status_code == 403
    assert f'href="/admin/{model}/add/"' not in admin_client.get(f"/admin/{model}/").content.decode()


def test_uploads_under_way_are_listed_and_shown(admin_client, alice):
    upload = Upload.objects.create(
        owner=alice, filename="scan.tif", size=3000, chunk_bytes=1000, received=1000
    )
    listed = admin_client.get("/admin/jobs/upload/").content.decode()
    assert "scan.tif" in listed and "alice" in listed
    page = admin_client.get(f"/admin/jobs/upload/{upload.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()


def test_tiles_are_shown_without_a_save_button(admin_client, job):
    page = admin_client.get(f"/admin/jobs/tile/{job.tiles.first().pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()


def test_a_jobs_priority_is_still_saved_from_its_page(admin_client, job):
    page = admin_client.get(f"/admin/jobs/job/{job.pk}/change/").content.decode()
    assert 'name="_save"' in page and 'name="priority"' in page
    admin_client.post(f"/admin/jobs/job/{job.pk}/change/", {"priority": Job.Priority.HIGH})
    job.refresh_from_db()
    assert job.priority == Job.Priority.HIGH


def test_the_files_link_to_the_apps_downloads_and_the_job_to_its_page(admin_client, job):
    Job.objects.filter(pk=job.pk).update(status=Job.Status.DONE, result="results/x.png")
    page = admin_client.get(f"/admin/jobs/job/{job.pk}/change/").content.decode()
    assert f'href="{reverse("api-job-original", args=[job.pk])}"' in page
    assert f'href="{reverse("api-job-result", args=[job.pk])}"' in page
    assert job.original.name not in page  # no link to storage: media is not served

    on_site = re.search(r'href="(/admin/r/[^"]+)"[^>]*>View on site', page)
    assert on_site is not None
    assert admin_client.get(on_site.group(1))["Location"].endswith(f"/jobs/{job.pk}/")


def test_a_jobs_tiles_are_a_link_to_their_own_list_not_an_inline(admin_client, job, alice):
    other = make_job(alice, noise(20, 20), tile_size=16)
    page = admin_client.get(f"/admin/jobs/job/{job.pk}/change/").content.decode()
    assert "tile_set" not in page and "inline-group" not in page
    found = re.search(r'<a href="([^"]+)">6 tiles</a> \(6 queued\)', page)
    assert found is not None
    link = found.group(1)

    tiles = admin_client.get(link.replace("&amp;", "&"))
    assert tiles.status_code == 200
    assert tiles.context["cl"].result_count == 6
    assert {tile.job_id for tile in tiles.context["cl"].result_list} == {job.pk} != {other.pk}


def test_staff_give_a_user_their_own_limits_and_see_their_use(admin_client, alice, job):
    response = admin_client.post(
        "/admin/jobs/userlimits/add/",
        {
            "user": alice.pk,
            "unfinished_jobs": "3",
            "queued_megapixels": "",
            "stored_mb": "",
            "high_priority": "on",
        },
    )
    assert response.status_code == 302
    limits = alice.limits
    assert (limits.unfinished_jobs, limits.queued_megapixels, limits.high_priority) == (3, None, True)
    page = admin_client.get(f"/admin/jobs/userlimits/{alice.pk}/change/").content.decode()
    assert "unfinished_jobs: 1 of 3" in page  # the job fixture, queued
