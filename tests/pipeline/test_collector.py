"""The collector's step functions, called directly against the real database."""

import io
from functools import partial

import pytest
from confluent_kafka import Message
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFilter

from imagepipe.core.codec import encode_tile
from imagepipe.core.output import FORMATS, encode
from jobs.models import Job, Tile
from pipeline import kafka
from pipeline.assembly import next_stage_input
from pipeline.collector import COUNTS, handle, handle_batch, record_heartbeat, record_result, record_results
from pipeline.messages import Heartbeat, MessageError, Result, pack
from pipeline.models import Collector, Worker
from tests.core.reference import reference
from tests.images import SRGB, noise, photo
from tests.images import jpeg_scan as scan
from tests.jobs.factories import SMALL_PHOTO, failed_result, make_job, result_bytes, result_image, results_for
from tests.strategies import envelopes, integers, json_values
from tests.topics import consumed

pytestmark = pytest.mark.django_db


def test_the_last_tile_assembles_a_pixel_identical_result(job, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        for value in results_for(job, SMALL_PHOTO):
            record_result(value)
    job.refresh_from_db()
    assert (job.status, job.tiles_done, job.tiles_total) == (Job.Status.DONE, 6, 6)
    assert result_image(job).tobytes() == SMALL_PHOTO.filter(ImageFilter.GaussianBlur(2)).tobytes()
    assert job.started_at and job.finished_at
    # The result holds the tiles' pixels: their files are gone, and no row names one.
    assert default_storage.listdir(f"tiles/{job.pk}") == ([], [])
    assert set(job.tiles.values_list("result", flat=True)) == {""}


def test_it_ignores_a_duplicate_result(job):
    first = results_for(job, SMALL_PHOTO)[0]
    record_result(first)
    record_result(first)
    job.refresh_from_db()
    assert job.tiles_done == 1
    assert job.status == Job.Status.RUNNING
    assert Tile.objects.get(job=job, index=0).state == Tile.State.DONE


def test_an_error_result_fails_the_job_with_the_reason(job):
    record_result(failed_result(job.pk, 2, "ValueError: boom", worker="w9"))
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error == "tile 2 failed on w9: ValueError: boom"
    tile = job.tiles.get(index=2)
    assert (tile.state, tile.error, tile.worker) == (Tile.State.FAILED, "ValueError: boom", "w9")


def test_the_failures_of_a_batch_cost_as_many_queries_for_five_tiles_as_for_one(alice):
    def cost(count: int) -> int:
        job = make_job(alice, SMALL_PHOTO)
        failures = [Result.decode(failed_result(job.pk, index, "ValueError: boom")) for index in range(count)]
        with CaptureQueriesContext(connection) as captured:
            record_results(failures)
        assert job.tiles.filter(state=Tile.State.FAILED).count() == count
        return len(captured)

    assert cost(5) == cost(1)


def test_a_result_for_an_unknown_job_changes_nothing(job):
    record_result(
        Result(
            job="00000000-0000-0000-0000-000000000000",
            index=0,
            worker="w",
            duration_ms=1,
            task_partition=0,
            task_offset=0,
        ).encode(b"")
    )
    assert not Tile.objects.done().exists()


def test_a_malformed_result_raises_for_the_loop_to_skip():
    with pytest.raises(MessageError):
        record_result(b"not an envelope")


def test_a_heartbeat_records_the_worker():
    record_heartbeat(Heartbeat(worker="w1", host="box", pid=7, tiles_done=3, partitions=[1, 2]).encode())
    worker = Worker.objects.get(pk="w1")
    assert (worker.host, worker.tiles_done, worker.partitions, worker.status) == (
        "box",
        3,
        [1, 2],
        Worker.Status.ONLINE,
    )


def test_a_global_step_runs_as_a_second_stage_from_summed_tile_histograms(kafka_topics, alice):
    image = photo("coffee.png").crop((0, 0, 200, 130))
    chain = [{"op": "gaussian_blur", "radius": 2}, {"op": "equalize"}, {"op": "box_blur", "radius": 1}]
    job = make_job(alice, image, operations=chain, tile_size=64)
    assert [len(job.stage_tiles(stage)) for stage in (0, 1)] == [12, 12]
    assert job.tiles_total == 24

    for value in results_for(job, image):
        record_result(value)  # the last one dispatches stage 1 to the (test) tasks topic
    job.refresh_from_db()
    assert (job.stage, job.tiles_done, job.status) == (1, 12, Job.Status.RUNNING)
    assert all(len(stats) == 768 for stats in job.tiles.filter(stage=0).values_list("stats", flat=True))

    intermediate, table = next_stage_input(job, 0)
    for value in results_for(job, intermediate, 1, table):
        record_result(value)
    job.refresh_from_db()
    assert job.status == Job.Status.DONE
    assert result_image(job).tobytes() == reference(image, chain).tobytes()


@pytest.mark.parametrize(
    "output",
    [
        {"output_format": "jpeg", "quality": 80},
        {"output_format": "webp"},
        {"output_format": "webp", "quality": 70},
        {"output_format": "tiff"},
        {"output_format": "avif"},
        {"output_format": "avif", "quality": 60},
        {"output_format": "heic", "quality": 70},
    ],
)
def test_the_result_is_encoded_in_the_requested_format(alice, output):
    image = photo("coffee.png").crop((0, 0, 130, 90))
    job = make_job(alice, image, **output)
    for value in results_for(job, image):
        record_result(value)
    job.refresh_from_db()
    expected = encode(
        image.filter(ImageFilter.GaussianBlur(2)), output["output_format"], output.get("quality")
    )
    if output["output_format"] == "jpeg":  # libvips' header, Pillow's scan (tests/core/test_jpeg.py)
        assert result_image(job).tobytes() == Image.open(io.BytesIO(expected)).tobytes()
        assert scan(result_bytes(job)) == scan(expected)
    else:
        assert result_bytes(job) == expected
    assert job.result.name.endswith(FORMATS[output["output_format"]].extension)


def test_an_icc_profile_travels_to_the_result(alice):
    image = photo("coffee.png").crop((0, 0, 70, 50))
    job = make_job(alice, image, fmt="PNG", icc=SRGB)
    for value in results_for(job, image):
        record_result(value)
    job.refresh_from_db()
    assert result_image(job).info["icc_profile"] == SRGB


# Hypothesis runs many examples in one test's transaction: the rows they leave are the point.
ANY_MESSAGE = settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])


@ANY_MESSAGE
@given(data=st.data())
def test_any_result_is_recorded_or_refused_with_message_error_only(job, data):
    tile = job.tiles.first()
    known = {
        "job": st.just(str(job.pk)) | json_values,
        "index": st.just(tile.index) | integers,
        "stage": st.just(0) | integers,
    }
    try:
        record_result(data.draw(envelopes(Result, **known)))
    except MessageError:
        pass
    job.refresh_from_db()
    assert job.tiles_done == job.tiles.done().count()


@ANY_MESSAGE
@given(value=envelopes(Heartbeat))
def test_any_heartbeat_is_recorded_or_refused_with_message_error_only(db, value):
    try:
        record_heartbeat(value)
    except MessageError:
        pass


@pytest.mark.parametrize(
    "values",
    [{"pid": 2**31}, {"worker": "w" * 300}, {"host": "a\x00b"}, {"counters": {"skipped": 2**64}}],
)
def test_a_heartbeat_the_database_cannot_hold_is_counted_and_skipped(values):
    header = {"kind": "heartbeat", "worker": "w", "host": "h", "pid": 1, "tiles_done": 0, **values}
    message = consumed(kafka.HEARTBEATS, pack(header), offset=7)
    before = COUNTS["malformed"]
    handle(message)
    assert COUNTS["malformed"] == before + 1
    assert not Worker.objects.exists()


def test_a_step_that_fails_unexpectedly_is_counted_and_skipped(monkeypatch, caplog):
    def broken(value, partition, offset):
        raise KeyError("a bug")

    monkeypatch.setattr("pipeline.collector.record_result", broken)
    before = COUNTS["failed"]
    handle(consumed(kafka.RESULTS, b"x", offset=9, partition=1))
    assert COUNTS["failed"] == before + 1
    assert "results[1]@9" in caplog.text


def as_message(value: bytes, topic: str = kafka.RESULTS, offset: int = 0) -> Message:
    return consumed(topic, value, offset=offset)


def test_a_batch_records_each_tile_once_and_skips_only_what_is_wrong(job):
    values = results_for(job, SMALL_PHOTO)
    result, _ = Result.decode(values[-1])
    batch = [
        *values[:-1],
        values[0],  # redelivered within the batch
        result.encode(encode_tile(noise(3, 3))),  # the last tile, with pixels of the wrong size
        b"not an envelope",
        Result("00000000-0000-0000-0000-000000000000", 0, "w", 1, 0, 0).encode(b""),
    ]
    before = COUNTS.copy()
    heartbeat = as_message(Heartbeat(worker="w1", host="h", pid=1, tiles_done=5).encode(), kafka.HEARTBEATS)
    handle_batch([*(as_message(value, offset=n) for n, value in enumerate(batch)), heartbeat])
    job.refresh_from_db()
    assert (job.status, job.tiles_done) == (Job.Status.RUNNING, 5)
    counted = {key: COUNTS[key] - before[key] for key in ("recorded", "duplicates", "malformed", "ignored")}
    assert counted == {"recorded": 5, "duplicates": 1, "malformed": 2, "ignored": 1}
    assert Worker.objects.filter(pk="w1").exists()

    handle_batch([as_message(values[-1])])
    job.refresh_from_db()
    assert job.status == Job.Status.DONE
    assert result_image(job).tobytes() == SMALL_PHOTO.filter(ImageFilter.GaussianBlur(2)).tobytes()


def test_a_batch_that_fails_unexpectedly_is_recorded_one_result_at_a_time(job, monkeypatch, caplog):
    together = record_results

    def broken_for_more_than_one(results):
        if len(results) > 1:
            raise KeyError("a bug")
        together(results)

    monkeypatch.setattr("pipeline.collector.record_results", broken_for_more_than_one)
    handle_batch([as_message(value, offset=n) for n, value in enumerate(results_for(job, SMALL_PHOTO))])
    job.refresh_from_db()
    assert (job.status, job.tiles_done) == (Job.Status.DONE, 6)
    assert result_image(job).tobytes() == SMALL_PHOTO.filter(ImageFilter.GaussianBlur(2)).tobytes()
    assert "recording 6 results together failed; recording them one by one" in caplog.text


def test_a_storage_outage_is_waited_out_with_the_batch_in_hand_and_nothing_is_lost(job, collector, outage):
    batch = [as_message(value, offset=n) for n, value in enumerate(results_for(job, SMALL_PHOTO))]
    seen = []

    def storage_comes_back() -> bool:  # asked after a failed try, and while it waits: a moment to look
        if outage.on:
            said = Collector.objects.get().storage_error
            seen.append((Job.objects.get(pk=job.pk).status, Tile.objects.done().count(), said))
            outage.end()
        return False

    outage.begin()
    collector.should_stop = storage_comes_back
    assert collector.durably(partial(handle_batch, batch))
    ((status, done, waiting_for),) = seen
    assert (status, done) == (Job.Status.QUEUED, 0)  # nothing recorded, nothing failed, nothing skipped
    assert waiting_for.startswith("writing tiles/") and "Not a directory" in waiting_for
    job.refresh_from_db()
    assert (job.status, job.tiles_done, job.error) == (Job.Status.DONE, 6, "")
    assert result_image(job).tobytes() == SMALL_PHOTO.filter(ImageFilter.GaussianBlur(2)).tobytes()
    assert Collector.objects.get().storage_error == ""  # said as soon as storage answers


def test_a_collector_asked_to_stop_during_a_storage_outage_records_nothing(job, collector, outage):
    batch = [as_message(value, offset=n) for n, value in enumerate(results_for(job, SMALL_PHOTO))]
    outage.begin()
    collector.should_stop = lambda: True
    assert not collector.durably(partial(handle_batch, batch))  # so its offsets are not stored
    assert not Tile.objects.done().exists() and Job.objects.get(pk=job.pk).status == Job.Status.QUEUED


def test_an_assembly_storage_refuses_is_handed_back_and_finished_once_storage_answers(job, collector, outage):
    batch = [as_message(value, offset=n) for n, value in enumerate(results_for(job, SMALL_PHOTO))]
    seen = []

    def storage_comes_back() -> bool:
        if outage.on:
            seen.append(Job.objects.values_list("status", "tiles_done", "error").get(pk=job.pk))
            outage.end()
        return False

    outage.begin("results")  # tiles are stored; the result can't be
    collector.should_stop = storage_comes_back
    assert collector.durably(partial(handle_batch, batch))
    assert seen == [(Job.Status.RUNNING, 6, "")]  # every tile in, the assembly handed back, not failed
    job.refresh_from_db()
    assert (job.status, job.error) == (Job.Status.DONE, "")
    assert result_image(job).tobytes() == SMALL_PHOTO.filter(ImageFilter.GaussianBlur(2)).tobytes()


def test_a_result_whose_tile_file_is_gone_fails_its_job_and_is_not_waited_for(job, settings):
    settings.COLLECTOR_CANVAS_MB = 0  # assembled from the stored tiles
    values = results_for(job, SMALL_PHOTO)
    for value in values[:-1]:
        record_result(value)
    default_storage.delete(job.tiles.get(index=0).result.name)  # lost while storage answers
    record_result(values[-1])
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and job.error.startswith("assembling the result failed:")
