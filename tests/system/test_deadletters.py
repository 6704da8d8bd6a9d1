"""The staff view of tasks.dlq, read from the real broker: GET /dead-letters/ and /api/dead-letters/."""

import socket
import time

import pytest
from confluent_kafka.admin import NewTopic
from prometheus_client.parser import text_string_to_metric_families

from pipeline import kafka
from pipeline.messages import Task
from system import deadletters
from tests.jobs.factories import SMALL_PHOTO, make_job

pytestmark = pytest.mark.django_db

START = 1_700_000_000_000  # ms: the parked messages' timestamps count up from here


@pytest.fixture
def dlq(kafka_prefix):
    """tasks.dlq with two partitions (ImagePipe makes one), to be read across."""
    admin = kafka.admin()  # alive until the topic is made
    (future,) = admin.create_topics([NewTopic(kafka.topic(kafka.TASKS_DLQ), 2)]).values()
    future.result(10)
    return kafka.topic(kafka.TASKS_DLQ)


def park(topic: str, letters: list[tuple[int, bytes, str]]) -> None:
    """Put (partition, value, reason) on the topic as a worker's dead_letter would, one second apart."""
    producer = kafka.producer()
    for n, (partition, value, reason) in enumerate(letters):
        headers: list[tuple[str, str | bytes | None]] = [
            ("reason", reason.encode()),
            ("worker", b"w1"),
            ("source", f"tasks[3]@{n}".encode()),
        ]
        producer.produce(topic, value, partition=partition, headers=headers, timestamp=START + n * 1000)
    assert producer.flush(10) == 0


def task(job_id: str, index: int, stage: int = 0) -> bytes:
    core = [0, 0, 64, 64]
    return Task(job_id, index, core, core, [150, 100], [{"op": "invert"}], stage).encode(b"pixels")


def test_the_newest_dead_letters_are_listed_across_partitions_with_their_reasons(dlq, alice, staff, client):
    job = make_job(alice, SMALL_PHOTO)
    park(
        dlq,
        [
            (0, task(str(job.pk), 3), "failed 3 times: CodecError: torn"),
            (1, b"garbage", "malformed task: not an envelope"),
            (0, task("00000000-0000-4000-8000-000000000000", 1, stage=1), "failed 3 times: ValueError"),
        ],
    )
    client.force_login(staff)
    body = client.get("/api/dead-letters/").json()
    assert body["total"] == 3 and body["limit"] == deadletters.LIMIT
    gone, malformed, known = body["messages"]
    assert [m["reason"] for m in body["messages"]] == [
        "failed 3 times: ValueError",
        "malformed task: not an envelope",
        "failed 3 times: CodecError: torn",
    ]
    assert {k: known[k] for k in ("job", "stage", "index", "worker", "source", "partition", "offset")} == {
        "job": str(job.pk),
        "stage": 0,
        "index": 3,
        "worker": "w1",
        "source": "tasks[3]@0",
        "partition": 0,
        "offset": 0,
    }
    assert known["job_url"] == f"/jobs/{job.pk}/" and known["time"].startswith("2023-11-14T22:13:20")
    assert known["size"] == len(task(str(job.pk), 3)) and known["undecodable"] == ""
    assert (gone["stage"], gone["index"], gone["job_url"]) == (1, 1, None)
    assert malformed["job"] == "" and malformed["undecodable"] and malformed["partition"] == 1


def test_only_the_last_few_are_read(dlq, staff, client):
    park(dlq, [(n % 2, b"x" * n, f"reason {n}") for n in range(7)])
    client.force_login(staff)
    body = client.get("/api/dead-letters/?limit=2").json()
    assert body["total"] == 7
    assert [m["reason"] for m in body["messages"]] == ["reason 6", "reason 5"]
    assert client.get("/api/dead-letters/?limit=0").json()["limit"] == 1
    assert client.get("/api/dead-letters/?limit=99999").json()["limit"] == deadletters.MAX_LIMIT


def test_metrics_count_the_messages_on_the_topic(kafka_topics, staff, client):
    park(kafka.topic(kafka.TASKS_DLQ), [(0, b"x", "reason")] * 3)
    client.force_login(staff)
    metrics = text_string_to_metric_families(client.get("/metrics").content.decode())
    (family,) = [family for family in metrics if family.name == "imagepipe_dead_letters"]
    assert family.samples[0].value == 3


def test_the_page_lists_each_letter_with_its_reason_and_a_link_to_its_job(dlq, alice, staff, client):
    job = make_job(alice, SMALL_PHOTO)
    park(
        dlq, [(0, task(str(job.pk), 2), "failed 3 times: <b>CodecError</b>"), (1, b"junk", "malformed task")]
    )
    client.force_login(staff)
    page = client.get("/dead-letters/").content.decode()
    assert "failed 3 times: &lt;b&gt;CodecError&lt;/b&gt;" in page
    assert f'<a href="/jobs/{job.pk}/">{job.pk}</a>' in page and "stage 0, tile 2" in page
    assert "undecodable: " in page and "2 messages on the topic" in page


def test_a_missing_topic_is_an_empty_list(kafka_prefix, staff, client):
    client.force_login(staff)
    assert client.get("/api/dead-letters/").json() == {"total": 0, "limit": 100, "messages": []}
    assert "No dead letters" in client.get("/dead-letters/").content.decode()


def test_an_unreachable_broker_is_said_so_within_seconds(settings, staff, client, monkeypatch):
    monkeypatch.setattr(deadletters, "TIMEOUT", 1.0)  # the bound is the same, only shorter
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        settings.KAFKA_BOOTSTRAP_SERVERS = f"127.0.0.1:{closed.getsockname()[1]}"
    client.force_login(staff)
    started = time.monotonic()
    response = client.get("/api/dead-letters/")
    assert response.status_code == 503 and response.json()["error"].startswith("broker unreachable: ")
    page = client.get("/dead-letters/")
    assert page.status_code == 503 and "broker unreachable: " in page.content.decode()
    assert time.monotonic() - started < 2 * deadletters.TIMEOUT + 2


def test_only_staff_see_the_dead_letters(alice, client):
    assert client.get("/api/dead-letters/").status_code in (401, 403)
    assert client.get("/dead-letters/")["Location"].startswith("/accounts/login/")
    client.force_login(alice)
    assert client.get("/api/dead-letters/").status_code == 403
    assert client.get("/dead-letters/").status_code == 403
