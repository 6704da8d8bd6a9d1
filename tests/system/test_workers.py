"""GET /api/workers/ and the workers page: rows in the order of their ids, tiles per second over the
tiles recorded in the last seconds, the counters of tasks not processed, when each was last seen."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Tile
from pipeline.models import Worker
from tests.images import noise
from tests.jobs.factories import make_job
from tests.queries import queries

pytestmark = pytest.mark.django_db


@pytest.fixture
def workers(alice):
    """w-b, busy (4 tiles recorded 2 s ago), seen most recently; w-a idle, seen 30 s ago."""
    now = timezone.now()
    Worker.objects.create(id="w-b", host="h", tiles_done=40, counters={"skipped": 3, "dead_lettered": 1})
    Worker.objects.create(id="w-a", host="h", last_seen=now - timedelta(seconds=30))
    job = make_job(alice, noise(128, 128), tile_size=64)
    job.tiles.filter(index__lt=4).update(worker="w-b", finished_at=now - timedelta(seconds=2), state="done")


def test_workers_are_listed_by_id_with_their_rate_counters_and_age(alice_api, workers):
    listed = alice_api.get("/api/workers/").json()["results"]
    assert [w["id"] for w in listed] == ["w-a", "w-b"]  # not by last heartbeat, which changes
    idle, busy = listed
    assert (busy["tiles_per_second"], idle["tiles_per_second"]) == (0.4, 0.0)
    assert busy["counters"] == {"skipped": 3, "dead_lettered": 1}
    assert 30 <= idle["seconds_since_seen"] < 40 and busy["seconds_since_seen"] < 10


def test_the_page_shows_the_same_rows_rate_and_counters(client, alice, workers):
    client.force_login(alice)
    page = client.get("/workers/").content.decode()
    assert page.index('data-worker="w-a"') < page.index('data-worker="w-b"')
    row = page[page.index('data-worker="w-b"') :].split("</tr>")[0]
    assert '<td class="rate">0.4</td>' in row
    assert [int(n) for n in re.findall(r"<td>(\d+)</td>", row)][-4:] == [3, 0, 0, 1]
    for counter in ["Skipped", "Failed", "Malformed", "Dead-lettered"]:
        assert f">{counter}</th>" in page
    assert "<time datetime=" in row and " ago</time>" in row


def test_listing_workers_costs_the_same_queries_for_many(alice_api, client, alice, workers):
    client.force_login(alice)
    few = queries(client, "/api/workers/"), queries(client, "/workers/")
    for n in range(10):
        Worker.objects.create(id=f"w{n}", host="h")
    Tile.objects.update(worker="w3")
    assert (queries(client, "/api/workers/"), queries(client, "/workers/")) == few


@pytest.fixture
def busy_workers(alice, bob):
    """w-1 works on one of alice's jobs, w-2 on one of bob's."""
    mine, theirs = make_job(alice, noise(20, 20)), make_job(bob, noise(20, 20))
    Worker.objects.create(id="w-1", host="gpu-rack-7", pid=4242, current_job=str(mine.pk))
    Worker.objects.create(id="w-2", host="gpu-rack-8", pid=4343, current_job=str(theirs.pk))
    return mine, theirs


def test_a_user_sees_no_host_nor_pid_and_only_their_own_current_job(alice_api, client, alice, busy_workers):
    mine, _ = busy_workers
    listed = alice_api.get("/api/workers/").json()["results"]
    assert [(w["host"], w["pid"], w["current_job"]) for w in listed] == [("", 0, str(mine.pk)), ("", 0, "")]
    assert alice_api.get("/api/workers/w-2/").json()["host"] == ""
    client.force_login(alice)
    page = client.get("/workers/").content.decode()
    assert "gpu-rack" not in page and "4242" not in page and str(busy_workers[1].pk) not in page


def test_staff_see_every_workers_host_pid_and_job(client, staff, busy_workers):
    client.force_login(staff)
    listed = client.get("/api/workers/").json()["results"]
    assert [(w["host"], w["pid"]) for w in listed] == [("gpu-rack-7", 4242), ("gpu-rack-8", 4343)]
    assert [w["current_job"] for w in listed] == [str(job.pk) for job in busy_workers]
