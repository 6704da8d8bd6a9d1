"""jobs.quotas: unfinished jobs, queued pixels and stored bytes per user, checked at submission
through the API, the form and `manage.py submit`; a user's own limits from staff; staff exempt;
priority high allowed per user."""

import threading
import time

import psycopg
import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db import connection, connections
from PIL import Image
from rest_framework.test import APIClient

from jobs import actions, previews
from jobs.models import Job, UserLimits
from jobs.quotas import QUOTA_LOCKS, QuotaExceeded
from pipeline.collector import record_result
from tests.images import DATA, noise

from .factories import SMALL_PHOTO, make_job, post_job, results_for, upload

pytestmark = pytest.mark.django_db


def originals() -> list[str]:
    try:
        return default_storage.listdir("originals")[1]
    except FileNotFoundError:
        return []


def blank(width: int, height: int):
    """An upload of ``width`` × ``height`` pixels that compresses to almost nothing."""
    return upload(Image.new("L", (width, height)))


def test_past_the_unfinished_jobs_quota_the_api_says_which_limit_and_stores_nothing(settings, alice_api):
    settings.QUOTA_UNFINISHED_JOBS = 2
    assert [post_job(alice_api, upload(noise(8, 8))).status_code for _ in range(2)] == [201, 201]
    refused = post_job(alice_api, upload(noise(8, 8)))
    assert refused.status_code == 403
    body = refused.json()
    assert {key: body[key] for key in ("code", "limit", "value", "used")} == {
        "code": "quota_exceeded",
        "limit": "unfinished_jobs",
        "value": 2,
        "used": 2,
    }
    assert body["error"].startswith("quota unfinished_jobs exceeded") and "cancel one" in body["error"]
    assert Job.objects.count() == 2 and len(originals()) == 2


def test_a_job_that_ended_frees_its_place(settings, alice, alice_api):
    settings.QUOTA_UNFINISHED_JOBS = 1
    job = make_job(alice, noise(8, 8))
    assert post_job(alice_api, upload(noise(8, 8))).status_code == 403
    actions.cancel(job)
    assert post_job(alice_api, upload(noise(8, 8))).status_code == 201


def test_queued_pixels_count_every_unfinished_job_and_the_new_one(settings, alice_api, bob_api):
    settings.QUOTA_QUEUED_MEGAPIXELS = 1
    assert post_job(alice_api, blank(1000, 600), tile_size=512).status_code == 201  # 0.6 MP
    refused = post_job(alice_api, blank(1000, 600), tile_size=512)  # 1.2 MP with it
    assert refused.status_code == 403
    body = refused.json()
    assert (body["limit"], body["value"], body["used"]) == ("queued_megapixels", 1, 0.6)
    assert "to 1.20 megapixels" in body["error"]
    assert post_job(alice_api, blank(1000, 400), tile_size=512).status_code == 201  # exactly 1 MP: fits
    assert post_job(bob_api, blank(1000, 600), tile_size=512).status_code == 201  # each user their own


def test_stored_bytes_count_what_the_users_jobs_hold_with_the_new_upload(settings, alice, alice_api):
    settings.QUOTA_STORED_MB = 1
    first = upload(noise(450, 450))  # 600 KB of noise, which PNG cannot shrink: two are over 1 MB
    job = actions.submit(alice, first, [{"op": "invert"}], 512)
    assert job.stored_bytes == first.size
    refused = post_job(alice_api, upload(noise(450, 450, seed=1)), tile_size=512)
    assert refused.status_code == 403 and refused.json()["limit"] == "stored_mb"
    assert refused.json()["used"] == round(first.size / 2**20, 2)
    actions.delete(job)  # its bytes go with it
    assert post_job(alice_api, upload(noise(450, 450, seed=1)), tile_size=512).status_code == 201


def stored_size(job: Job) -> int:
    """What the job's files hold in storage, walked (what the quota must not have to do)."""
    names = job.stored_files() + previews.stored_names(job.pk)
    return sum(default_storage.size(name) for name in names)


def test_a_jobs_stored_bytes_follow_its_files_through_its_life(job, django_capture_on_commit_callbacks):
    values = results_for(job, SMALL_PHOTO)
    for value in values[:3]:
        record_result(value)
    job.refresh_from_db()
    assert job.stored_bytes == stored_size(job) and job.tile_bytes > 0  # the original and 3 tiles
    with django_capture_on_commit_callbacks(execute=True):
        for value in values[3:]:
            record_result(value)
    job.refresh_from_db()
    assert job.status == Job.Status.DONE and job.tile_bytes == 0  # its tiles dropped
    # The original, the result and the result's previews (made before the job was done).
    assert job.stored_bytes == stored_size(job) > job.original.size + job.result.size


def test_the_form_shows_the_refusal_and_makes_no_job(settings, client, alice):
    settings.QUOTA_UNFINISHED_JOBS = 0  # no limit...
    make_job(alice, noise(8, 8))
    settings.QUOTA_UNFINISHED_JOBS = 1  # ...then one, which alice has
    client.force_login(alice)
    response = client.post("/jobs/new/", {"image": upload(noise(8, 8)), "operations": '[{"op": "invert"}]'})
    assert response.status_code == 400
    assert "quota unfinished_jobs exceeded" in response.content.decode()
    assert Job.objects.count() == 1 and len(originals()) == 1


def test_the_submit_command_refuses_with_the_quota(settings, alice):
    settings.QUOTA_UNFINISHED_JOBS = 1
    make_job(alice, noise(8, 8))
    with pytest.raises(CommandError, match="quota unfinished_jobs exceeded: .* over your limit of 1"):
        call_command("submit", str(DATA / "coffee.png"), "--op=invert", "--user=alice")
    assert Job.objects.count() == 1


def test_staff_set_a_users_own_limits_and_an_empty_one_is_the_default(settings, alice, alice_api):
    settings.QUOTA_UNFINISHED_JOBS, settings.QUOTA_QUEUED_MEGAPIXELS = 1, 1
    UserLimits.objects.create(user=alice, unfinished_jobs=3)
    assert [post_job(alice_api, upload(noise(8, 8))).status_code for _ in range(4)] == [201, 201, 201, 403]
    assert post_job(alice_api, blank(1200, 1000)).json()["limit"] == "unfinished_jobs"  # checked first
    UserLimits.objects.filter(user=alice).update(unfinished_jobs=0)  # no limit on jobs for alice...
    refused = post_job(alice_api, blank(1200, 1000), tile_size=512)
    assert refused.json()["limit"] == "queued_megapixels"  # ...but her pixels' limit is the setting's
    assert post_job(alice_api, upload(noise(8, 8))).status_code == 201


def test_staff_have_no_quotas(settings, staff):
    settings.QUOTA_UNFINISHED_JOBS, settings.QUOTA_QUEUED_MEGAPIXELS, settings.QUOTA_STORED_MB = 1, 1, 1
    api = APIClient()
    api.force_authenticate(staff)
    assert [post_job(api, blank(1200, 1000), tile_size=512).status_code for _ in range(3)] == [201] * 3


def test_staff_allow_a_user_priority_high(alice, alice_api, client):
    assert post_job(alice_api, upload(noise(8, 8)), priority="high").status_code == 403
    UserLimits.objects.create(user=alice, high_priority=True)
    granted = post_job(alice_api, upload(noise(8, 8)), priority="high")
    assert granted.status_code == 201 and granted.json()["priority"] == "high"
    job = make_job(alice, noise(8, 8))
    raised = alice_api.post(f"/api/jobs/{job.pk}/priority/", {"priority": "high"}, format="json")
    assert raised.json()["priority"] == "high"
    client.force_login(alice)
    offered = client.get("/jobs/new/").context["form"].fields["priority"].choices
    assert [value for value, _ in offered] == ["low", "normal", "high"]


def waiting_for_the_lock(other, user) -> int:
    """How many connections wait for the user's submission lock."""
    query = (
        "SELECT count(*) FROM pg_locks"
        " WHERE locktype = 'advisory' AND NOT granted AND classid = %s AND objid = %s"
    )
    return other.execute(query, [QUOTA_LOCKS, user.pk]).fetchone()[0]


@pytest.mark.django_db(transaction=True)  # two submissions, each in a connection of its own
def test_two_submissions_at_once_cannot_both_fit(settings, alice):
    settings.QUOTA_UNFINISHED_JOBS = 1
    other = psycopg.connect(**connection.get_connection_params(), autocommit=True)
    other.execute("SELECT pg_advisory_lock(%s, %s)", [QUOTA_LOCKS, alice.pk])  # both pass the first check
    outcomes: list[str] = []

    def submit() -> None:
        try:
            make_job(alice, noise(8, 8))
            outcomes.append("created")
        except QuotaExceeded:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while waiting_for_the_lock(other, alice) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)  # until both wait at the lock, in their transactions
        assert waiting_for_the_lock(other, alice) == 2
    finally:
        other.close()  # its lock goes with it: the two go one after the other
        for thread in threads:
            thread.join(30)
    assert sorted(outcomes) == ["created", "refused"]
    assert Job.objects.count() == 1 and len(originals()) == 1
