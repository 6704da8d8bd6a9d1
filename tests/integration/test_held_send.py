"""A send held by a slow broker blocks nobody: the dispatcher publishes outside its transaction.

The system's own dispatcher steps aside and one runs here, in a thread, so the test can hold it in
the middle of a send: its tiles are claimed, and its flush waits for a broker stopped with
SIGSTOP. Meanwhile a pause through the real web server and the collector recording a result of
one of those very tiles must both answer, while the dispatcher is still waiting; then the broker
goes on, and the send completes.
"""

import os
import signal
import threading

import pytest
from django.db import connections

from imagepipe.core.normalise import normalise
from jobs.models import Job, Tile
from pipeline import kafka
from pipeline.collector import record_result
from pipeline.dispatch import Dispatcher
from pipeline.messages import Task
from tests.images import photo
from tests.jobs.factories import results_for
from tests.topics import all_records, broker_pid

from .conftest import submit

pytestmark = [pytest.mark.integration, pytest.mark.exclusive]  # it stops the broker under everyone


@pytest.fixture
def dispatcher_here(system, kafka_topics, settings):
    """A dispatcher in this process, on this test's topics, in place of the system's."""
    settings.MEDIA_ROOT = system.env["MEDIA_ROOT"]  # where the web stored the originals
    settings.DISPATCH_WINDOW_MIN = 4
    system.stop("dispatcher")
    try:
        yield Dispatcher()
    finally:
        system.start_dispatcher()


def test_a_send_held_by_the_broker_blocks_neither_the_web_nor_the_collector(api, dispatcher_here):
    body = submit(api, "coffee.png", [{"op": "invert"}], tile_size=64)
    job = Job.objects.get(pk=body["id"])
    dispatcher_here.live_partitions()  # the topic's metadata, asked while the broker answers
    outcome: list[int | BaseException] = []

    def step():
        try:
            outcome.append(dispatcher_here.step())
        except BaseException as exc:
            outcome.append(exc)
        finally:
            connections.close_all()  # this thread's own

    sending = threading.Thread(target=step)
    pid = broker_pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        sending.start()
        claimed = wait_for_claim(job, sending, outcome)

        paused = api.post(f"{api.base}/api/jobs/{job.pk}/pause/")
        assert paused.status_code == 200 and paused.json()["status"] == "paused"
        assert sending.is_alive(), "the send ended before the pause answered: the test proves nothing"

        record_result(results_for(job, normalise(photo("coffee.png")))[claimed[0]])
        assert Tile.objects.get(job=job, index=claimed[0]).state == Tile.State.DONE
        assert sending.is_alive()
    finally:
        os.kill(pid, signal.SIGCONT)
        sending.join(60)
    assert outcome == [len(claimed)]  # the broker took them once it went on
    on_topic = sorted(Task.decode(message.value())[0].index for message in all_records(kafka.TASKS))
    assert on_topic == claimed
    assert dispatcher_here.step() == 0  # paused: nothing more goes out


def wait_for_claim(job: Job, sending: threading.Thread, outcome: list) -> list[int]:
    """The indices the dispatcher has claimed (marked sent), once it has: it is then publishing."""
    for _ in range(600):
        claimed = sorted(job.tiles.in_flight().values_list("index", flat=True))
        if claimed:
            return claimed
        sending.join(0.05)
        assert sending.is_alive(), f"the dispatcher's step ended without claiming a tile: {outcome}"
    raise AssertionError("the dispatcher claimed no tile in 30 s")
