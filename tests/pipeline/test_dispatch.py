"""The dispatcher's step against the real database and broker: the window, fairness, priority,
pause and cancel decide what reaches ``tasks``."""

import io
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone
from PIL import Image

from imagepipe.core.bands import Bands
from jobs import actions
from jobs.models import Job, Tile
from jobs.storage import StorageUnavailable
from pipeline import kafka
from pipeline.collector import record_result
from pipeline.dispatch import PACE_SECONDS, Dispatcher, Wakeups
from pipeline.messages import Task
from pipeline.models import Worker
from pipeline.stages import StageImages
from tests.events import listening, next_message
from tests.images import encoded, garbled_tiff, noise, png_file
from tests.jobs.factories import SMALL_PHOTO, make_job, results_for
from tests.topics import all_records

pytestmark = pytest.mark.django_db


def sent(job=None) -> list[tuple[str, int]]:
    """(job, tile index) of every task on the topic, of one job if given."""
    tasks = [Task.decode(message.value())[0] for message in all_records(kafka.TASKS)]
    return [(t.job, t.index) for t in tasks if job is None or t.job == str(job.pk)]


def test_no_more_tiles_than_the_window_are_in_flight(dispatcher, job):
    assert dispatcher.step() == 4
    assert dispatcher.step() == 0  # full until tiles come back
    assert sorted(sent(job)) == [(str(job.pk), i) for i in range(4)]
    assert list(job.tiles.in_flight().values_list("attempts", flat=True)) == [1, 1, 1, 1]
    assert sorted(job.tiles.in_flight().values_list("partition", flat=True)) == [0, 1, 2, 3]  # spread
    job.refresh_from_db()
    assert job.dispatched_at is not None


def test_the_window_holds_a_second_of_work_at_what_tiles_took_lately(dispatcher, alice, settings):
    settings.DISPATCH_AHEAD_SECONDS = 1.0
    for name in ("w1", "w2"):  # two workers online, holding every partition
        Worker.objects.create(id=name, host="h", partitions=[0, 1] if name == "w1" else [2, 3])
    done = make_job(alice, noise(256, 160), tile_size=32)  # 40 tiles
    job = make_job(alice, noise(256, 256), tile_size=32)  # 64 tiles

    def recorded(ms: int, ago: float = 0.0) -> None:
        done.tiles.update(
            state=Tile.State.DONE, duration_ms=ms, finished_at=timezone.now() - timedelta(seconds=ago)
        )
        job.tiles.in_flight().requeue()

    recorded(ms=200)  # 5 tiles a second each (the floor would give 2)
    assert dispatcher.step() == 10
    recorded(ms=40)  # 25 each
    assert dispatcher.step() == 50
    recorded(ms=40, ago=PACE_SECONDS + 1)  # nothing recorded lately: 2 each
    assert dispatcher.step() == 4
    # Tiny tiles (1 ms of work each) recorded only 10 in 2 s: their trips are what they cost,
    # 0.4 s a tile for each worker, so the second ahead is 3 tiles each, not 1000.
    job.tiles.in_flight().requeue()
    done.tiles.update(finished_at=None, state=Tile.State.QUEUED)
    for tile in done.tiles.order_by("index")[:10]:
        tile.state, tile.duration_ms = Tile.State.DONE, 1
        tile.finished_at = timezone.now() - timedelta(seconds=2 - tile.index * 0.2)
        tile.save()
    assert dispatcher.step() == 6


def test_a_finished_tile_makes_room_for_the_next(dispatcher, job):
    dispatcher.step()
    record_result(results_for(job, SMALL_PHOTO)[0])
    assert dispatcher.step() == 1
    assert sorted(index for _, index in sent(job)) == [0, 1, 2, 3, 4]


def test_a_small_job_behind_a_big_one_is_sent_at_the_next_free_place(dispatcher, alice, bob):
    big = make_job(alice, noise(256, 256), tile_size=32)  # 64 tiles
    dispatcher.step()
    small = make_job(bob, noise(20, 20), tile_size=32)
    record_result(results_for(big, noise(256, 256))[0])  # one place frees
    dispatcher.step()
    assert sent(small) == [(str(small.pk), 0)]
    assert len(sent(big)) == 4


def test_higher_priority_gets_the_window_first(dispatcher, alice, bob):
    normal = make_job(alice, noise(128, 128), tile_size=32)
    high = make_job(bob, noise(64, 64), tile_size=32)
    actions.prioritise(high, Job.Priority.HIGH)
    dispatcher.step()
    assert (len(sent(high)), len(sent(normal))) == (4, 0)


def test_a_job_cancelled_before_its_tiles_were_sent_sends_nothing(dispatcher, job):
    actions.cancel(job)
    assert dispatcher.step() == 0
    assert sent() == []


def test_a_paused_job_is_not_sent_until_it_is_resumed(dispatcher, job):
    assert actions.pause(job)
    assert dispatcher.step() == 0
    assert actions.resume(job)
    assert dispatcher.step() == 4
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED


def test_a_job_whose_original_cannot_be_read_fails_with_the_reason(dispatcher, job):
    job.original.storage.delete(job.original.name)
    assert dispatcher.step() == 0
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.error.startswith("preparing stage 0 failed:")


def test_a_storage_outage_holds_a_jobs_tiles_back_without_failing_it(job, outage):
    dispatcher = Dispatcher()  # no broker: the tiles can't even be cut, so nothing is published
    outage.begin()
    with pytest.raises(StorageUnavailable):  # the loop waits it out (tests/pipeline/test_loop.py)
        dispatcher.send(job, 4, Counter({0: 0}))
    job.refresh_from_db()
    assert (job.status, job.error) == (Job.Status.QUEUED, "")
    assert job.tiles.queued().count() == job.tiles_total  # none claimed: all sent once it answers


def test_the_stage_images_kept_are_bounded(alice):
    jobs = [make_job(alice, noise(40, 40, seed=n)) for n in range(3)]
    images = StageImages(size=2)
    for job in jobs:
        images.get(job)
    assert list(images.images) == [(str(jobs[1].pk), 0), (str(jobs[2].pk), 0)]
    again, _ = images.get(jobs[0])  # read again
    assert isinstance(again, Bands)
    assert again.crop((0, 0, 40, 40)).tobytes() == noise(40, 40, seed=0).tobytes()
    assert list(images.images) == [(str(jobs[2].pk), 0), (str(jobs[0].pk), 0)]


def test_only_inputs_that_fit_beside_those_held_count_as_in_memory(alice):
    a, b, c = (make_job(alice, noise(40, 40, seed=n)) for n in range(3))
    images = StageImages(size=2)
    images.get(b)
    keys = [(str(job.pk), 0) for job in (a, b, c)]
    assert images.fitting(keys) == {keys[0], keys[1]}  # b held, a (first in order) has the room
    images.get(a)
    assert images.fitting(keys) == {keys[0], keys[1]}  # full: c would evict
    images.keep_only({keys[0]})
    assert list(images.images) == [keys[0]]


def test_the_dispatcher_lets_go_of_an_input_once_its_tiles_are_all_sent(dispatcher, alice, settings):
    settings.DISPATCH_WINDOW_MIN = 100
    job = make_job(alice, noise(128, 64), tile_size=64)  # 2 tiles
    assert dispatcher.step() == 2
    assert list(dispatcher.images.images) == [(str(job.pk), 0)]
    assert dispatcher.step() == 0
    assert dispatcher.images.images == {}


@pytest.mark.parametrize(
    "name,data,reason",
    [
        # Every checksum right, so the request (which reads only headers and chunks) accepts it.
        ("garbled.png", png_file(40, 30, b"not a deflate stream"), "libpng read error"),
        ("garbled.tif", garbled_tiff(40, 30), "code not yet in table"),
    ],
)
def test_an_upload_whose_pixels_do_not_decode_fails_its_job_before_any_tile_is_sent(
    dispatcher, alice, name, data, reason
):
    job = actions.submit(alice, SimpleUploadedFile(name, data), [{"op": "invert"}])
    assert dispatcher.step() == 0
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error.startswith("preparing stage 0 failed: the original could not be decoded: ")
    assert reason in job.error
    assert sent(job) == []


def test_an_original_that_fails_part_way_down_fails_its_job_with_no_tile_left_claimed(
    dispatcher, alice, settings
):
    settings.DISPATCH_WINDOW_MIN = 100  # every tile in one send
    # 6 MB decoded: its first pass reads it in two bands, so its tiles are cut from it read again.
    good = encoded(noise(1024, 2048), "TIFF", compression="tiff_lzw", strip_size=1024 * 3 * 64)
    job = actions.submit(alice, SimpleUploadedFile("late.tif", good), [{"op": "invert"}], tile_size=512)
    dispatcher.images.get(job)
    garbled = bytearray(good)
    tags = Image.open(io.BytesIO(good)).tag_v2  # type: ignore[attr-defined]
    start, length = tags[273][16], tags[279][16]  # the strip of rows 1024-1087: tiles 4 and after
    garbled[start + 4 : start + length] = b"\xff" * (length - 4)
    Path(job.original.path).write_bytes(garbled)  # the disk under it went bad since
    assert dispatcher.step() == 0
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and "cutting" not in job.error
    assert job.error.startswith("preparing stage 0 failed:")
    assert 0 < len(sent(job)) < job.tiles_total  # the tiles above were published as they were cut
    assert not job.tiles.in_flight().exists()  # and their claim let go with the rest


def another_connection() -> psycopg.Connection:
    """A connection that is not this process's Django one: the collector's, say."""
    return psycopg.connect(**connection.get_connection_params(), autocommit=True)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("table", ["jobs_tile", "jobs_job"])
def test_any_change_to_tiles_or_jobs_notifies_the_dispatchers_channel(table):
    with another_connection() as listener, another_connection() as collector:
        listener.execute(f"LISTEN {Wakeups.CHANNEL}")
        collector.execute(f"UPDATE {table} SET id = id WHERE false")  # a statement, whatever it changes
        pid, deadline = collector.info.backend_pid, time.monotonic() + 30
        heard = []  # (a system running on this database may be heard too: the collector's is the one)
        while pid not in heard and time.monotonic() < deadline:
            heard += [note.pid for note in listener.notifies(timeout=1, stop_after=1)]
        assert pid in heard


@pytest.mark.django_db(transaction=True)
def test_a_change_made_elsewhere_wakes_the_dispatcher_and_its_own_do_not():
    channel = f"test_{uuid.uuid4().hex}"  # a channel only this test uses
    wakeups = Wakeups(channel)
    try:
        assert not wakeups.wait(0.05)  # listening from here on
        with connection.cursor() as own:
            own.execute(f"NOTIFY {channel}")
        assert not wakeups.wait(0.05)
        with another_connection() as collector:
            collector.execute(f"NOTIFY {channel}")
        assert wakeups.wait(30)
    finally:
        wakeups.close()


def test_the_jobs_page_hears_which_tiles_were_sent_and_how_often(dispatcher, job):
    Tile.objects.filter(job=job, index=2).update(attempts=1)  # sent once before: recovery queued it again
    channel = listening(job.group_name)
    assert dispatcher.step() == 4
    event = next_message(channel)["event"]
    assert event == {"type": "sent", "stage": 0, "tiles": [[0, 1], [1, 1], [2, 2], [3, 1]]}
    assert list(job.tiles.in_flight().order_by("index").values_list("attempts", flat=True)) == [1, 1, 2, 1]


def test_one_send_holds_at_most_a_quarter_of_the_memory_budget_in_tasks(dispatcher, alice, settings):
    settings.DISPATCH_WINDOW_MIN = 100
    settings.DISPATCH_MEMORY_MB = 1  # a quarter: 256 KiB, 16 tiles of 64 × 64 × 4 bytes at most
    job = make_job(alice, noise(512, 256), operations=[{"op": "invert"}], tile_size=64)  # 32, no halo
    assert dispatcher.step() == 16
    assert dispatcher.step() == 16
    assert len(sent(job)) == 32
