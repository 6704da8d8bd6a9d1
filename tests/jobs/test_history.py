"""The history's filters, on the page and on GET /api/jobs/ alike: whose jobs (staff only), which
operation, and labels for every control."""

import re
from typing import cast

import pytest
from django.utils import timezone
from rest_framework.settings import api_settings

from jobs.models import Job
from tests.images import noise

from .factories import make_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def jobs(alice, bob, staff):
    """One job each for alice (blur), bob (grayscale → invert) and staff (invert)."""
    made = {
        "alice": make_job(alice, noise(10, 10), [{"op": "gaussian_blur", "radius": 2}]),
        "bob": make_job(bob, noise(10, 10), [{"op": "grayscale"}, {"op": "invert"}]),
        "staff": make_job(staff, noise(10, 10), [{"op": "invert"}]),
    }
    for owner, job in made.items():
        Job.objects.filter(pk=job.pk).update(original_name=f"{owner}.png")
    return made


def listed(client, query: str = "") -> set[str]:
    """The jobs' file names on the history page for ``query``, checked against the API's answer."""
    page = client.get(f"/?{query}").content.decode()
    names = set(re.findall(r'<a href="/jobs/[0-9a-f-]{36}/">([^<]+)</a>', page))
    api = client.get(f"/api/jobs/?{query}")
    assert api.status_code == 200
    assert {job["original_name"] for job in api.json()["results"]} == names
    return names


def test_staff_choose_their_own_jobs_all_jobs_or_one_owners(client, staff, jobs):
    client.force_login(staff)
    assert listed(client) == listed(client, "scope=all") == {"alice.png", "bob.png", "staff.png"}
    assert listed(client, "scope=mine") == {"staff.png"}
    assert listed(client, "owner=bob") == {"bob.png"}


def test_other_users_get_no_owner_filters_and_never_see_others_jobs(client, alice, jobs):
    client.force_login(alice)
    page = client.get("/").content.decode()
    assert 'name="scope"' not in page and 'name="owner"' not in page
    assert listed(client, "scope=all&owner=bob") == listed(client) == {"alice.png"}


def test_everyone_filters_by_an_operation_anywhere_in_the_chain(client, staff, jobs):
    client.force_login(staff)
    assert listed(client, "op=invert") == {"bob.png", "staff.png"}
    assert listed(client, "op=grayscale") == {"bob.png"}
    assert listed(client, "op=median") == set()


def test_the_api_refuses_filters_it_cannot_read(client, staff):
    client.force_login(staff)
    for query in ["op=melt", "since=yesterday", "owner=nobody", "scope=theirs"]:
        response = client.get(f"/api/jobs/?{query}")
        assert response.status_code == 400, query
        assert response.json()["error"]


@pytest.mark.parametrize("user", ["alice", "staff"])
def test_every_filter_control_has_a_label(client, jobs, user, request):
    client.force_login(request.getfixturevalue(user))
    form = re.search(r'<form method="get" class="filters".*?</form>', client.get("/").content.decode(), re.S)
    assert form is not None
    controls = re.findall(r'<(?:select|input)\b[^>]*\bid="([^"]+)"', form.group(0))
    labelled = re.findall(r'<label for="([^"]+)">\w', form.group(0))
    assert controls == labelled and len(controls) == (5 if user == "alice" else 7)


def test_thumbnails_say_which_image_they_show_and_wait_for_the_pipeline_to_make_it(client, alice, jobs):
    Job.objects.filter(original_name="alice.png").update(status=Job.Status.DONE)
    started, waiting = make_job(alice, noise(10, 10)), make_job(alice, noise(10, 10))
    Job.objects.filter(pk=started.pk).update(original_name="started.png", dispatched_at=timezone.now())
    client.force_login(alice)
    page = client.get("/").content.decode()
    assert f'alt="result of alice.png" src="/api/jobs/{jobs["alice"].pk}/preview/result/"' in page
    assert f'alt="original of started.png" src="/api/jobs/{started.pk}/preview/original/"' in page
    row = page[page.index(f'data-job="{waiting.pk}"') :].split("</tr>")[0]  # its original not decoded yet
    assert '<span class="no-preview" data-which="">no preview yet</span>' in row and "<img" not in row


def test_a_page_of_history_is_a_page_of_the_api(client, alice):
    for _ in range(cast(int, api_settings.PAGE_SIZE) + 1):  # set in settings.REST_FRAMEWORK
        make_job(alice, noise(4, 4))
    client.force_login(alice)
    assert client.get("/").content.decode().count("<tr data-job=") == api_settings.PAGE_SIZE
    assert len(client.get("/api/jobs/").json()["results"]) == api_settings.PAGE_SIZE
