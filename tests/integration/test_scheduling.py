"""The dispatcher through the real processes: fair between users, pause and resume, cancel before
dispatch, two dispatchers at once."""

import io

import pytest
from PIL import Image

from jobs.models import Job, Tile
from pipeline import kafka
from pipeline.messages import MessageError, Task
from tests.core.reference import reference
from tests.images import photo
from tests.topics import all_records

from .conftest import submit, token_session, wait_for, wait_until_finished

pytestmark = pytest.mark.integration

MEDIAN = [{"op": "median", "size": 5}]
# A big job: 950 tiles of 16 px, several times what the window holds (a quarter of a second of
# work ahead, in the tests), so most of it is still queued when another job comes.
BIG = 16


@pytest.fixture
def system_topics(system, settings):
    """This test process reads the system's topics."""
    settings.KAFKA_TOPIC_PREFIX = system.env["KAFKA_TOPIC_PREFIX"]


def exact(api, body, name, chain) -> bool:
    result = Image.open(io.BytesIO(api.get(body["result_url"]).content))
    return result.tobytes() == reference(photo(name), chain).tobytes()


def tasks_of(job_id: str) -> list[tuple[int, int, int]]:
    """(stage, index, generation) of every task the dispatchers sent for the job (the topic also
    holds what other tests sent, the fault tests' malformed messages among them)."""
    found = []
    for message in all_records(kafka.TASKS):
        try:
            task, _ = Task.decode(message.value())
        except MessageError:
            continue
        if task.job == job_id:
            found.append((task.stage, task.index, task.generation))
    return found


def test_a_small_job_submitted_behind_a_big_one_is_sent_before_the_big_ones_queue(api, system, bob):
    big = submit(api, "coffee.png", MEDIAN, tile_size=BIG)
    running = Tile.objects.filter(job_id=big["id"]).in_flight()
    wait_for(running.exists, "the big job running", system)
    bobs = token_session(system.url, "bob", "bob-pass")
    small = submit(bobs, "camera.png", MEDIAN, tile_size=512)  # one tile
    body = wait_until_finished(bobs, system, small["id"])
    assert body["status"] == "done" and exact(bobs, body, "camera.png", MEDIAN)
    assert wait_until_finished(api, system, big["id"])["status"] == "done"
    # Alice still had tiles to send when bob's job came, and bob's tile went before the last of
    # them: at a free place of the window, not behind the rest of her queue.
    alices = Tile.objects.filter(job_id=big["id"])
    came, sent = (
        Job.objects.get(pk=small["id"]).created_at,
        Tile.objects.get(job_id=small["id"]).dispatched_at,
    )
    assert alices.filter(dispatched_at__gt=came).exists()
    assert alices.filter(dispatched_at__gt=sent).exists()


def test_a_paused_job_sends_nothing_more_until_resumed_then_finishes_exact(api, system, system_topics):
    job = submit(api, "coffee.png", MEDIAN, tile_size=BIG)
    tiles = Tile.objects.filter(job_id=job["id"])
    wait_for(lambda: tiles.done().exists(), "a first tile done", system)
    assert api.post(f"{api.base}/api/jobs/{job['id']}/pause/").json()["status"] == "paused"
    wait_for(lambda: not tiles.in_flight().exists(), "the tiles in flight to finish", system)
    done = tiles.done().count()
    assert 0 < done < job["tiles_total"] and tiles.queued().count() == job["tiles_total"] - done
    assert len(tasks_of(job["id"])) == done  # nothing queued was sent while paused
    assert api.post(f"{api.base}/api/jobs/{job['id']}/resume/").json()["status"] == "running"
    body = wait_until_finished(api, system, job["id"])
    assert body["status"] == "done" and exact(api, body, "coffee.png", MEDIAN)


def test_a_job_cancelled_before_dispatch_sends_nothing(api, system, system_topics):
    system.stop("dispatcher")
    try:
        cancelled = submit(api, "coffee.png", MEDIAN, tile_size=64)
        assert api.post(f"{api.base}/api/jobs/{cancelled['id']}/cancel/").json()["status"] == "cancelled"
    finally:
        system.start_dispatcher()
    later = submit(api, "camera.png", MEDIAN, tile_size=128)  # sent by the same dispatcher, after
    assert wait_until_finished(api, system, later["id"])["status"] == "done"
    assert tasks_of(cancelled["id"]) == []


def test_two_dispatchers_at_once_send_each_tile_once(api, system, system_topics):
    system.start_dispatcher("dispatcher-2")
    try:
        job = submit(api, "coffee.png", MEDIAN, tile_size=32)
        body = wait_until_finished(api, system, job["id"])
    finally:
        system.stop("dispatcher-2")
    assert body["status"] == "done" and exact(api, body, "coffee.png", MEDIAN)
    sent = tasks_of(job["id"])
    assert sorted(sent) == sorted(set(sent)) and len(sent) == job["tiles_total"]
