"""A send held by a slow broker blocks nobody: the dispatcher publishes outside its transaction.

The broker is stopped (SIGSTOP) while the dispatcher, in a thread, is in the middle of a send:
its tiles are claimed, and its flush waits for the broker. Meanwhile a pause through the API and
the collector recording a result of one of those very tiles must answer, while the dispatcher is
still waiting; then the broker goes on, and the send completes.
"""

import os
import signal
import threading

import pytest
from django.db import connections

from jobs.models import Job, PendingCancellation, Tile
from pipeline import kafka
from pipeline.collector import record_result
from pipeline.messages import Task
from pipeline.models import Worker
from tests.jobs.factories import SMALL_PHOTO, results_for
from tests.topics import all_records, broker_pid

pytestmark = [pytest.mark.exclusive, pytest.mark.django_db(transaction=True)]


def test_a_send_held_by_the_broker_blocks_neither_the_web_nor_the_collector(dispatcher, job, alice_api):
    # What the processes of earlier tests left in this database (their workers, their tiles in
    # flight) would take places in the window this dispatcher fills.
    Job.objects.exclude(pk=job.pk).delete()
    Worker.objects.all().delete()
    PendingCancellation.objects.all().delete()
    dispatcher.live_partitions()  # the topic's metadata, asked while the broker answers
    sent: list[int | BaseException] = []

    def step():
        try:
            sent.append(dispatcher.step())
        except BaseException as exc:
            sent.append(exc)
        finally:
            connections.close_all()  # this thread's own

    worker = threading.Thread(target=step)
    pid = broker_pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        worker.start()
        claimed = wait_for_claim(job, worker, sent)

        response = alice_api.post(f"/api/jobs/{job.pk}/pause/")
        assert response.status_code == 200 and response.json()["status"] == "paused"
        assert worker.is_alive(), "the send ended before the pause answered: the test proves nothing"

        record_result(results_for(job, SMALL_PHOTO)[claimed[0]])
        assert Tile.objects.get(job=job, index=claimed[0]).state == Tile.State.DONE
        assert worker.is_alive()
    finally:
        os.kill(pid, signal.SIGCONT)
        worker.join(60)
    assert sent == [len(claimed)]  # the broker took them once it went on
    on_topic = sorted(Task.decode(message.value())[0].index for message in all_records(kafka.TASKS))
    assert on_topic == claimed
    assert dispatcher.step() == 0  # paused: nothing more goes out
    assert Job.objects.get(pk=job.pk).status == Job.Status.PAUSED


def wait_for_claim(job, worker: threading.Thread, outcome: list) -> list[int]:
    """The indices the dispatcher has claimed (marked sent), once it has: it is then publishing."""
    for _ in range(600):
        claimed = sorted(job.tiles.in_flight().values_list("index", flat=True))
        if claimed:
            return claimed
        worker.join(0.05)
        assert worker.is_alive(), f"the dispatcher's step ended without claiming a tile: {outcome}"
    raise AssertionError("the dispatcher claimed no tile in 30 s")
