"""The broker believes no one it has not authenticated, lets each role do only its part, and the
collector records only results that answer a task it sent.

All through the broker scripts/services.sh runs (SASL_SSL, SCRAM logins, ACLs from
``manage.py kafka_topics``) and the system's real processes, each holding its own role's secrets.
"""

from __future__ import annotations

import uuid
from typing import cast

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from django.conf import settings as django_settings
from PIL import Image

from jobs.models import Tile
from pipeline import kafka, signing
from pipeline.dispatch import task_messages
from pipeline.messages import Heartbeat, Task
from pipeline.models import Collector, Worker
from pipeline.worker import process_task
from tests.images import DATA
from tests.topics import as_role, delivery_error, signed_for

from .conftest import wait_for
from .test_faults import LOST, lost_job

pytestmark = pytest.mark.integration


def test_a_client_that_does_not_log_in_learns_nothing():
    for config in (
        {"bootstrap.servers": django_settings.KAFKA_BOOTSTRAP_SERVERS},  # no TLS, no login
        {**as_role("worker"), "sasl.password": "guessed"},
    ):
        with pytest.raises(KafkaException):
            AdminClient({**config, "socket.timeout.ms": 3000}).list_topics(timeout=5)


def test_each_role_may_write_only_its_own_topics(system, settings):
    settings.KAFKA_TOPIC_PREFIX = system.env["KAFKA_TOPIC_PREFIX"]
    refused = KafkaError.TOPIC_AUTHORIZATION_FAILED
    for role, topic in [
        ("worker", kafka.TASKS),  # only the dispatcher sends tasks
        ("worker", kafka.CANCELLATIONS),
        ("collector", kafka.TASKS),
        ("web", kafka.RESULTS),
        ("dispatcher", kafka.RESULTS),
        ("dispatcher", kafka.HEARTBEATS),
    ]:
        error = delivery_error(as_role(role), kafka.topic(topic))
        assert error is not None and error.code() == refused, (role, topic, error)
    assert delivery_error(as_role("worker"), kafka.topic(kafka.HEARTBEATS)) is None  # its own: taken


def test_a_role_may_not_read_what_is_not_for_it(system, settings):
    settings.KAFKA_TOPIC_PREFIX = system.env["KAFKA_TOPIC_PREFIX"]
    for role, group, topic in [
        ("web", kafka.DEAD_LETTER_READER, kafka.TASKS),  # its own group, not its topic
        # Not their groups (joining the live processes' would disturb them): refused at the group.
        ("collector", "intruders", kafka.TASKS),
        ("worker", "intruders", kafka.RESULTS),
        ("dispatcher", "intruders", kafka.RESULTS),
    ]:
        reader = Consumer({**as_role(role), "group.id": kafka.group(group), "enable.auto.commit": False})
        reader.subscribe([kafka.topic(topic)])
        message = reader.poll(10)
        reader.close()
        error = message.error() if message is not None else None
        assert error is not None, (role, topic)
        assert error.code() in (
            KafkaError.TOPIC_AUTHORIZATION_FAILED,
            KafkaError.GROUP_AUTHORIZATION_FAILED,
        ), (role, topic, error)


def refused_letters(job_id: str) -> dict[int, str]:
    """The collector's dead letters keyed ``job_id``: the offset each had on ``results``, and why."""
    reader = kafka.consumer("test-results-dlq-reader", **{"enable.auto.commit": False})
    reader.assign([TopicPartition(kafka.topic(kafka.RESULTS_DLQ), 0, OFFSET_BEGINNING)])
    letters: dict[int, str] = {}
    while (message := reader.poll(3)) is not None:
        if message.error() or (message.key() or b"").decode(errors="replace") != job_id:
            continue
        headers = dict(cast("list[tuple[str, bytes]]", message.headers()))
        letters[int(headers["source"].decode().rsplit("@", 1)[1])] = headers["reason"].decode()
    reader.close()
    return letters


def answers(job, nonce: str) -> dict[int, bytes]:
    """Each tile's result as the real worker code answers a send of ``nonce``."""
    source = Image.open(DATA / "coffee.png")
    replies = {}
    for index, value in task_messages(job, source, 0, nonce=nonce):
        result, pixels = process_task(*Task.decode(value), "w", 0, index)
        replies[index] = result.encode(pixels)
    return replies


def test_forged_replayed_cross_job_and_stale_results_are_dead_lettered_and_never_written(
    system, settings, transactional_db, alice
):
    """Sent with a worker's login, as a compromised worker host could: each result either lacks
    the workers' signature or answers no task sent. One real answer among them is recorded (so
    the test can fail), then replayed once its tile is sent again."""
    settings.KAFKA_TOPIC_PREFIX = system.env["KAFKA_TOPIC_PREFIX"]
    job, other = (lost_job(system, settings, [{"op": "invert"}], 128, paused=True) for _ in range(2))
    other.tiles.update(nonce="the-other-jobs-send")
    Tile.objects.filter(job=job, index=1).update(nonce="sent-again")  # tile 1 went out once more since
    answer = answers(job, LOST)
    cross = answers(other, LOST)[4]  # the other job's tile, with this job's nonce
    mine, theirs = str(job.pk), str(other.pk)
    no_signature: signing.Headers = []
    sends: list[tuple[str, str, bytes, signing.Headers]] = [
        ("recorded", mine, answer[0], signed_for(kafka.RESULTS, mine, answer[0])),
        ("unsigned", mine, answer[2], no_signature),
        ("unsigned", mine, answer[3], [(signing.HEADER, b"\0" * 32)]),
        ("unsigned", mine, answer[5][:-1] + b"\1", signed_for(kafka.RESULTS, mine, answer[5])),  # altered
        ("stale_nonce", mine, answer[1], signed_for(kafka.RESULTS, mine, answer[1])),
        (
            "stale_nonce",
            theirs,
            cross,
            signed_for(kafka.RESULTS, theirs, cross),
        ),
    ]
    producer = Producer(as_role("worker"))
    expected: dict[tuple[str, int], str] = {}

    def send(why, key, value, headers: signing.Headers):
        def landed(err, msg):
            assert err is None, err
            expected[key, msg.offset()] = why

        producer.produce(kafka.topic(kafka.RESULTS), value, key=key, headers=headers, on_delivery=landed)
        assert producer.flush(15) == 0

    for why, key, value, headers in sends:
        send(why, key, value, headers)
    wait_for(lambda: Tile.objects.get(job=job, index=0).state == Tile.State.DONE, "the real answer", system)
    Tile.objects.filter(job=job, index=0).update(state=Tile.State.SENT, nonce="sent-after-it")
    send("stale_nonce", mine, answer[0], signed_for(kafka.RESULTS, mine, answer[0]))  # replayed

    refused = {place: why for place, why in expected.items() if why != "recorded"}

    def all_parked():
        letters = {
            (key, offset): why for key in (mine, theirs) for offset, why in refused_letters(key).items()
        }
        return letters if set(refused) <= set(letters) else None

    letters = wait_for(all_parked, "every refused result on results.dlq", system)
    for place, why in refused.items():
        assert ("signature" in letters[place], "nonce" in letters[place]) == (
            why == "unsigned",
            why == "stale_nonce",
        ), letters[place]
    # Nothing recorded (the collector's recovery may have queued the paused jobs' tiles again meanwhile).
    recorded = Tile.objects.filter(job__in=[job, other], state__in=[Tile.State.DONE, Tile.State.FAILED])
    assert not recorded.exists()

    def counted():
        totals = {"unsigned": 0, "stale_nonce": 0}
        for counters in Collector.objects.filter(stopped=False).values_list("counters", flat=True):
            for reason in totals:
                totals[reason] += counters.get(reason, 0)
        return totals["unsigned"] >= 3 and totals["stale_nonce"] >= 3

    wait_for(counted, "the collector to count the refusals", system)


def test_a_heartbeat_no_worker_signed_makes_no_worker(system, settings, transactional_db):
    settings.KAFKA_TOPIC_PREFIX = system.env["KAFKA_TOPIC_PREFIX"]
    forged, real = f"forged-{uuid.uuid4().hex[:6]}", f"signed-{uuid.uuid4().hex[:6]}"
    producer = Producer(as_role("worker"))
    forged_mac: signing.Headers = [(signing.HEADER, b"\1" * 32)]
    for name, sign in (forged, False), (real, True):
        value = Heartbeat(worker=name, host="h", pid=1, tiles_done=0).encode()
        headers = signed_for(kafka.HEARTBEATS, name, value) if sign else forged_mac
        producer.produce(kafka.topic(kafka.HEARTBEATS), value, key=name, headers=headers)
    assert producer.flush(15) == 0
    wait_for(lambda: Worker.objects.filter(id=real).exists(), "the signed heartbeat", system)
    assert not Worker.objects.filter(id=forged).exists()
