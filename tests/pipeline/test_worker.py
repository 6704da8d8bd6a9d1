"""The tile worker's steps against the real broker: any task is processed, skipped or parked."""

import time
import uuid

import pytest
from confluent_kafka import TopicPartition
from django.core.management import CommandError, call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from imagepipe.core.codec import decode_tile, encode_tile
from imagepipe.core.kernels import ENGINES
from pipeline import kafka
from pipeline.messages import Cancellation, Result, Task, pack
from pipeline.worker import Cancellations, TileWorker, describe_kernels, process_task
from tests.images import noise
from tests.strategies import envelopes
from tests.topics import consumed, read_topic, signed_for

JOB = str(uuid.uuid4())


@pytest.fixture
def worker(kafka_topics):
    worker = TileWorker("test-worker")
    # Own every tasks partition, as after a rebalance, so handle() may store offsets.
    worker.consumer.consumer.assign([TopicPartition(kafka.topic(kafka.TASKS), p) for p in range(4)])
    yield worker
    worker.producer.flush(10)
    worker.consumer.stop()
    worker.cancellations.close()


def task_message(value, offset=0, partition=0):
    return consumed(kafka.TASKS, value, b"k", offset, partition)


def a_task(generation=0, **changes):
    fields = {
        "job": JOB,
        "index": 0,
        "core": [0, 0, 8, 8],
        "padded": [0, 0, 8, 8],
        "size": [8, 8],
        "operations": [{"op": "invert"}],
        "generation": generation,
    }
    return Task(**{**fields, **changes})


def test_a_task_is_processed_and_its_result_published(worker):
    worker.handle(task_message(a_task().encode(encode_tile(noise(8, 8)))))
    (message,) = read_topic(kafka.RESULTS, 1)
    result, payload = Result.decode(message.value())
    assert (result.job, result.index, result.error, worker.tiles_done) == (JOB, 0, "", 1)


def test_a_malformed_task_is_parked_on_the_dead_letter_topic_with_its_reason(worker):
    worker.handle(task_message(b"IPM\x01\x00\x00\x00\x03[[[", offset=41))
    worker.producer.flush(10)
    (parked,) = read_topic(kafka.TASKS_DLQ, 1)
    headers = dict(parked.headers())
    assert headers["reason"].startswith(b"malformed task: bad message header")
    assert headers["source"] == f"{kafka.topic(kafka.TASKS)}[0]@41".encode()
    assert worker.counters == {"malformed": 1, "dead_lettered": 1}


def test_an_unforeseen_failure_parks_the_task_instead_of_ending_the_worker(worker, monkeypatch):
    monkeypatch.setattr("pipeline.worker.process_task", lambda *args: 1 / 0)
    worker.handle(task_message(a_task().encode(b"")))
    worker.producer.flush(10)
    (parked,) = read_topic(kafka.TASKS_DLQ, 1)
    assert dict(parked.headers())["reason"] == b"unhandled ZeroDivisionError: division by zero"
    assert worker.counters["failed"] == 1


def test_a_cancelled_generation_is_skipped_and_a_later_one_runs(worker):
    worker.cancellations.apply(Cancellation(JOB, 0))
    worker.handle(task_message(a_task(generation=0).encode(encode_tile(noise(8, 8)))))
    assert (worker.counters["skipped"], worker.tiles_done) == (1, 0)
    worker.handle(task_message(a_task(generation=1).encode(encode_tile(noise(8, 8))), offset=1))
    assert worker.tiles_done == 1


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=envelopes(Task, job=st.just(JOB)), partition=st.integers(0, 3), offset=st.integers(0, 2**40))
def test_any_task_is_dealt_with_and_never_raises(worker, value, partition, offset):
    done, counted = worker.tiles_done, sum(worker.counters.values())
    worker.handle(task_message(value, offset, partition))
    assert worker.tiles_done + sum(worker.counters.values()) > done + counted


def cancellation(key, value, offset=0):
    return consumed(kafka.CANCELLATIONS, value, key, offset)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.one_of(st.none(), st.binary(max_size=40)), value=st.one_of(st.none(), st.binary(max_size=12)))
def test_any_cancellation_record_is_read_or_counted_and_passed_over(worker, key, value):
    known, malformed = dict(worker.cancellations.jobs), worker.counters["malformed"]
    worker.cancellations.read(cancellation(key, value))
    assert (
        worker.cancellations.jobs != known or worker.counters["malformed"] == malformed + 1 or value is None
    )


def test_a_worker_starts_past_a_cancellation_it_cannot_read(kafka_topics):
    producer = kafka.producer()
    for key, value in (b"\xff\xfe", b"0"), (JOB.encode(), b"2"):
        headers = signed_for(kafka.CANCELLATIONS, key, value)
        producer.produce(kafka.topic(kafka.CANCELLATIONS), value, key=key, headers=headers)
    producer.flush(10)
    cancellations = Cancellations()
    try:
        cancellations.read_all()
        assert cancellations.jobs == {JOB: 2} and cancellations.counters["malformed"] == 1
    finally:
        cancellations.close()


def test_a_heartbeat_reports_the_counters(worker):
    worker.handle(task_message(pack({"kind": "task"})))
    worker.heartbeat()
    worker.producer.flush(10)
    (beat,) = read_topic(kafka.HEARTBEATS, 1)
    assert b'"malformed":1' in beat.value()


def test_a_worker_id_its_heartbeats_could_not_carry_is_refused_at_start():
    with pytest.raises(CommandError, match="at most 255 characters"):
        call_command("runworker_kafka", "--id", "w" * 256)


def test_a_cancellations_reader_that_stopped_reading_reopens_where_it_was(kafka_topics, settings):
    settings.CONSUMER_STALL_SECONDS, settings.CONSUMER_CHECK_SECONDS = 1, 0.1
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    producer = kafka.producer()
    cancellations = Cancellations()

    def cancel_and_read(job):
        headers = signed_for(kafka.CANCELLATIONS, job.encode(), b"0")
        producer.produce(kafka.topic(kafka.CANCELLATIONS), b"0", key=job.encode(), headers=headers)
        producer.flush(10)
        deadline = time.monotonic() + 20
        while job not in cancellations.jobs and time.monotonic() < deadline:
            cancellations.catch_up(0.1)

    try:
        cancel_and_read(first)
        cancellations.consumer.pause([TopicPartition(kafka.topic(kafka.CANCELLATIONS), 0)])  # stuck
        cancel_and_read(second)
        assert cancellations.jobs == {first: 0, second: 0} and cancellations.counters["rebuilds"] == 1
    finally:
        cancellations.close()


@pytest.mark.parametrize("engine,black", [("fast", True), ("pillow", False)])
def test_the_worker_computes_with_the_engine_its_setting_names(settings, monkeypatch, engine, black):
    # A stand-in route that paints black: it shows which engine ran, which exact ones can't.
    monkeypatch.setitem(
        ENGINES, "fast", {"median": lambda image, params, at: Image.new(image.mode, image.size)}
    )
    settings.WORKER_KERNELS = engine
    task = a_task(operations=[{"op": "median", "size": 3}])
    result, payload = process_task(task, encode_tile(noise(8, 8)), "w", 0, 0)
    assert result.error == "" and (decode_tile(payload).getbbox() is None) is black


def test_a_worker_says_which_operations_it_computes_faster():
    assert describe_kernels("fast") == (
        "fast (dilate, edge_detect, emboss, erode, median, sharpen, unsharp_mask through OpenCV;"
        " Pillow for the rest)"
    )
    assert describe_kernels("pillow") == "Pillow only"
