"""Faults cost time, never data: each is injected mid-job into the real processes, broker and database.

Every job must end done with the whole-image result and each tile recorded once, or failed where
failing is the point.
"""

import io
import os
import random
import subprocess
import threading
import time
from pathlib import Path
from typing import cast

import pytest
from confluent_kafka import OFFSET_BEGINNING, TopicPartition
from django.core.files import File
from django.db import connections, transaction
from django.utils import timezone
from PIL import Image

from imagepipe.processes import BASE_DIR
from jobs.actions import submit as submit_job
from jobs.models import Job, Tile
from pipeline import collector, kafka
from pipeline.messages import Result, Task, pack
from pipeline.models import Collector, Worker
from tests.core.reference import reference
from tests.images import DATA, photo
from tests.topics import signed_for

from .conftest import restart_worker, submit, two_workers_assigned, wait_for, wait_until_finished

pytestmark = pytest.mark.integration

CHAIN = [{"op": "median", "size": 5}, {"op": "gaussian_blur", "radius": 2}]  # 247 tiles of 32 px


def big_job(api):
    return submit(api, "coffee.png", CHAIN, tile_size=32)


def mid_job(api, system, job):
    """Wait until a random share of the job's tiles (10-50 %) are done."""
    target = random.randint(job["tiles_total"] // 10, job["tiles_total"] // 2)
    wait_for(
        lambda: api.get(f"{api.base}/api/jobs/{job['id']}/").json()["tiles_done"] >= target,
        f"{target} tiles done",
        system,
    )


def assert_complete_and_exact(api, system, job):
    body = wait_until_finished(api, system, job["id"])
    assert body["status"] == "done", body["error"]
    result = Image.open(io.BytesIO(api.get(body["result_url"]).content))
    assert result.tobytes() == reference(photo("coffee.png"), CHAIN).tobytes()
    tiles = Tile.objects.filter(job_id=job["id"])
    assert tiles.count() == body["tiles_done"] == body["tiles_total"]  # each tile recorded once
    assert set(tiles.values_list("state", flat=True)) == {Tile.State.DONE}


def worker_names(system):
    return sorted(name for name in system.processes if "worker" in name)


def test_a_worker_killed_mid_tile_loses_nothing(api, system):
    job = big_job(api)
    mid_job(api, system, job)
    victim = worker_names(system)[0]
    system.kill(victim)
    assert_complete_and_exact(api, system, job)
    restart_worker(system, victim)


def test_a_collector_killed_mid_job_resumes_where_it_committed(api, system):
    job = big_job(api)
    mid_job(api, system, job)
    system.kill("collector")
    system.start_collector()
    assert_complete_and_exact(api, system, job)


def test_a_dispatcher_killed_mid_job_loses_nothing_and_another_carries_on(api, system):
    job = big_job(api)
    system.start_dispatcher("dispatcher-2")  # standing by while the first one sends
    mid_job(api, system, job)
    system.kill("dispatcher")
    assert_complete_and_exact(api, system, job)
    system.stop("dispatcher-2")
    system.start_dispatcher()


def test_a_graceful_stop_finishes_the_message_in_hand_and_exits_promptly(api, system):
    job = big_job(api)
    mid_job(api, system, job)
    started = time.monotonic()
    assert system.stop("collector", timeout=15) == 0
    assert time.monotonic() - started < 10
    system.start_collector()
    victim = worker_names(system)[1]
    started = time.monotonic()
    assert system.stop(victim, timeout=15) == 0
    assert time.monotonic() - started < 10
    assert_complete_and_exact(api, system, job)
    restart_worker(system, victim)


@pytest.mark.exclusive  # restarts a service every test shares
def test_a_broker_restart_mid_job_is_survived(api, system):
    job = big_job(api)
    mid_job(api, system, job)
    subprocess.run(
        [str(BASE_DIR / "scripts/services.sh"), "restart", "kafka"], check=True, capture_output=True
    )
    assert_complete_and_exact(api, system, job)
    wait_for(
        lambda: all(w.partitions for w in Worker.objects.filter(id__in=worker_names(system))),
        "workers back in the group",
        system,
    )


@pytest.mark.exclusive  # restarts a service every test shares
def test_a_database_restart_mid_job_is_survived(api, system):
    job = big_job(api)
    mid_job(api, system, job)
    subprocess.run([str(BASE_DIR / "scripts/services.sh"), "restart", "pg"], check=True, capture_output=True)
    connections.close_all()  # this test process's connection died with the server too
    assert_complete_and_exact(api, system, job)


LOST = "lost-send"  # the nonce of a lost job's send: a task a test sends for it carries it


def lost_job(system, settings, chain, tile_size, paused=False):
    """A job whose tiles were sent (with the nonce ``LOST``) and never arrived: a broker that lost
    them, say. Recovery sends them again after TILE_DEADLINE_SECONDS, unless ``paused``."""
    settings.MEDIA_ROOT = system.env["MEDIA_ROOT"]
    owner = Job._meta.get_field("owner").related_model._default_manager.get(username="alice")
    with open(DATA / "coffee.png", "rb") as handle, transaction.atomic():  # before the dispatcher sees it
        job = submit_job(owner, File(handle, name="coffee.png"), chain, tile_size)
        job.tiles.update(state=Tile.State.SENT, attempts=1, dispatched_at=timezone.now(), nonce=LOST)
        if paused:
            job.pause()
    return job


def test_lost_tiles_are_sent_again_from_the_stored_original(api, system, settings):
    job = lost_job(system, settings, CHAIN, 32)
    assert_complete_and_exact(api, system, {"id": str(job.pk)})
    assert set(Tile.objects.filter(job=job).values_list("attempts", flat=True)) == {2}


def test_a_tile_that_keeps_failing_goes_to_the_dead_letter_topic_and_fails_its_job(
    api, system, settings, monkeypatch
):
    settings.KAFKA_TOPIC_PREFIX = system.env["KAFKA_TOPIC_PREFIX"]
    job = lost_job(system, settings, [{"op": "invert"}], 64)
    broken = Task(
        job=str(job.pk),
        index=0,
        core=[0, 0, 64, 64],
        padded=[0, 0, 64, 64],
        size=[600, 400],
        operations=[{"op": "invert"}],
        nonce=LOST,
    )
    value, key = broken.encode(b"IPT1 torn pixels"), f"{job.pk}:0"
    producer = kafka.producer()
    producer.produce(kafka.topic(kafka.TASKS), value, key=key, headers=signed_for(kafka.TASKS, key, value))
    producer.flush(10)

    body = wait_until_finished(api, system, str(job.pk))
    assert body["status"] == "failed"
    assert "tile 0 failed" in body["error"] and "failed 3 times: CodecError" in body["error"]
    reasons = dead_letters(str(job.pk))
    assert reasons and "CodecError" in reasons[0]
    other = submit(api, "camera.png", [{"op": "invert"}], 128)  # the rest carries on
    assert wait_until_finished(api, system, other["id"])["status"] == "done"


def dead_letters(job_id):
    consumer = kafka.consumer("test-dlq-reader", **{"enable.auto.commit": False})
    consumer.assign([TopicPartition(kafka.topic(kafka.TASKS_DLQ), 0, OFFSET_BEGINNING)])
    reasons: list[str] = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not reasons:
        message = consumer.poll(1)
        if message is not None and not message.error() and (message.key() or b"").startswith(job_id.encode()):
            headers = cast("list[tuple[str, bytes]]", message.headers())  # as the worker set them
            reasons.append(dict(headers)["reason"].decode())
    consumer.close()
    return reasons


def nested(depth: int) -> bytes:
    """An envelope whose header is a JSON array nested ``depth`` levels deep."""
    body = b"[" * depth + b"]" * depth
    return b"IPM\x01" + len(body).to_bytes(4, "big") + body


def heartbeat(**values) -> bytes:
    return pack({"kind": "heartbeat", "worker": "w", "host": "h", "pid": 1, "tiles_done": 0, **values})


def test_poison_on_every_topic_stops_nothing_even_across_restarts(api, system, settings):
    settings.KAFKA_TOPIC_PREFIX = system.env["KAFKA_TOPIC_PREFIX"]
    unknown = "00000000-0000-4000-8000-000000000000"
    poison = {
        kafka.TASKS: [
            b"garbage",
            b"IPM\x09\x00\x00\x00\x02{}",
            pack({"kind": "task", "job": "x"}),
            b"IPM\x01" + b"\xff" * 2_000_000,
            nested(100_000),
            b'IPM\x01\x00\x00\x00\x1b{"kind":"task","index":NaN}',
            pack(
                {
                    "kind": "task",
                    "job": unknown,
                    "index": 0,
                    "core": "x",
                    "padded": [],
                    "size": [],
                    "operations": [],
                }
            ),
        ],
        kafka.RESULTS: [
            b"garbage",
            nested(100_000),
            pack({"kind": "result", "job": unknown}),
            Result(job=unknown, index=0, worker="w", duration_ms=1, task_partition=0, task_offset=0).encode(
                b"x"
            ),
            pack(
                {
                    "kind": "result",
                    "job": unknown,
                    "index": 2**40,
                    "worker": "w\x00",
                    "duration_ms": 0,
                    "task_partition": 0,
                    "task_offset": 0,
                }
            ),
        ],
        kafka.HEARTBEATS: [
            b"\x00",
            heartbeat(pid=-1),
            heartbeat(pid=2**31),
            heartbeat(worker="w" * 300),
            heartbeat(host="a\x00b"),
            heartbeat(host="\ud800"),
            heartbeat(counters={"x": 10**30}),
            nested(100_000),
        ],
    }
    log = system.log_dir / "collector.log"
    start = log.stat().st_size
    # Signed as their senders would sign them: garbage from a sender who holds the keys (a bug,
    # a compromised node) must not stop anything either.
    producer = kafka.producer()
    for topic, values in poison.items():
        for value in values:
            producer.produce(kafka.topic(topic), value, headers=signed_for(topic, None, value))
    for key, value in (b"\xff\xfe", b"0"), (unknown.encode(), b"\xff"):
        headers = signed_for(kafka.CANCELLATIONS, key, value)
        producer.produce(kafka.topic(kafka.CANCELLATIONS), value, key=key, headers=headers)
    producer.flush(10)

    job = submit(api, "camera.png", [{"op": "invert"}], 128)
    assert wait_until_finished(api, system, job["id"])["status"] == "done"
    system.check_alive()
    wait_for(
        lambda: (
            sum(w.counters.get("malformed", 0) for w in Worker.objects.all())
            >= 2 * 2 + len(poison[kafka.TASKS])
        ),
        "the workers to count the malformed tasks and cancellations",
        system,
    )

    def skipped():
        return log.read_text()[start:].count("skipping malformed message")

    # Every heartbeat and every result but the one for an unknown job (ignored, not malformed).
    malformed = len(poison[kafka.RESULTS]) - 1 + len(poison[kafka.HEARTBEATS])
    wait_for(lambda: skipped() == malformed, "the collector to skip the malformed messages", system)

    # Restarted, nothing reads the poison again: every offset was stored.
    victim = worker_names(system)[0]
    system.stop(victim)
    system.stop("collector")
    system.start_collector()
    restart_worker(system, victim)
    exact = submit(api, "coffee.png", CHAIN, tile_size=64)
    body = wait_until_finished(api, system, exact["id"])
    assert body["status"] == "done", body["error"]
    result = Image.open(io.BytesIO(api.get(body["result_url"]).content))
    assert result.tobytes() == reference(photo("coffee.png"), CHAIN).tobytes()
    assert skipped() == malformed
    # A worker reads the compacted cancellations in full at each start: only those two again.
    assert Worker.objects.get(id=victim).counters.get("malformed") == 2
    system.check_alive()


def test_a_cancelled_jobs_tiles_are_skipped_by_the_workers(api, system):
    # Workers outrun the collector, so tiles are cancelled while still queued: workers away.
    names = worker_names(system)
    for name in names:
        system.stop(name)
    job = big_job(api)
    sent = Tile.objects.filter(job_id=job["id"], attempts__gt=0)
    wait_for(sent.exists, "the dispatcher to send the first tiles", system)
    response = api.post(f"{api.base}/api/jobs/{job['id']}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    in_flight = sent.count()  # the window's worth; the rest are never sent
    assert 0 < in_flight < job["tiles_total"]
    for name in names:
        system.start_worker(name)
    wait_for(lambda: two_workers_assigned(system), "the workers to come back", system)

    def skipped():
        return sum(w.counters.get("skipped", 0) for w in Worker.objects.filter(id__in=names))

    wait_for(lambda: skipped() >= in_flight, "the workers to skip every tile sent", system)
    after = Job.objects.get(pk=job["id"])
    assert after.status == Job.Status.CANCELLED and after.tiles_done == 0


def test_a_cancelled_job_retried_and_cancelled_again_still_finishes_exact(api, system):
    job = big_job(api)
    url = f"{api.base}/api/jobs/{job['id']}"
    for round_ in (1, 2):
        target = round_ * job["tiles_total"] // 4
        done = lambda n=target: api.get(f"{url}/").json()["tiles_done"] >= n  # noqa: E731
        wait_for(done, f"{target} tiles done", system)
        assert api.post(f"{url}/cancel/").json()["status"] == "cancelled"
        retried = api.post(f"{url}/retry/")
        assert retried.status_code == 200 and retried.json()["status"] == "running"
    assert_complete_and_exact(api, system, job)
    assert Job.objects.get(pk=job["id"]).generation == 2


def test_a_collector_whose_consumer_stops_is_rebuilt_by_its_watchdog_and_the_job_finishes(
    api, system, settings
):
    # The stuck state lives inside a consumer, so the collector runs here, in a thread, where the
    # test can reach its consumer; web, workers, broker and database are the real ones.
    settings.KAFKA_TOPIC_PREFIX = system.env["KAFKA_TOPIC_PREFIX"]
    settings.MEDIA_ROOT = system.env["MEDIA_ROOT"]
    settings.CONSUMER_STALL_SECONDS, settings.CONSUMER_CHECK_SECONDS = 4, 0.5
    system.stop("collector")
    consumer, stop = collector.watched_consumer(), threading.Event()

    def run():
        try:
            collector.ResultCollector(consumer, poll_seconds=0.2).run(stop.is_set)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        wait_for(lambda: consumer.consumer.assignment(), "the collector to be assigned", system)
        consumer.consumer.pause(consumer.consumer.assignment())  # alive, polling, consuming nothing
        job = submit(api, "coffee.png", CHAIN, tile_size=64)
        assert_complete_and_exact(api, system, job)
    finally:
        stop.set()
        thread.join(30)
        system.start_collector()
    report = Collector.objects.get(pid=os.getpid())  # its last report, written as it stopped
    assert report.rebuilds == consumer.rebuilds >= 1 and report.stopped
    assert "messages wait in its partitions but none arrived for 4 s" in report.stalled


def test_a_silent_worker_turns_stale_then_offline_in_the_api(api, system):
    victim = worker_names(system)[1]

    def status():
        workers = {w["id"]: w["status"] for w in api.get(f"{api.base}/api/workers/").json()["results"]}
        return workers.get(victim)

    wait_for(lambda: status() == "online", f"{victim} online", system)
    system.kill(victim)

    wait_for(lambda: status() == "stale", f"{victim} to turn stale", system, timeout=10)
    wait_for(lambda: status() == "offline", f"{victim} to turn offline", system, timeout=15)
    restart_worker(system, victim)
    assert status() == "online"


def test_a_storage_outage_longer_than_several_recovery_rounds_is_waited_out(api, system):
    # As root, permissions stop no write: the storage goes away as a disk does, its folder moved
    # aside and a file put at its path, for web, collector and dispatcher alike.
    media = Path(system.env["MEDIA_ROOT"])
    away = media.with_name(media.name + "-away")
    job = big_job(api)
    mid_job(api, system, job)
    media.rename(away)
    media.write_text("storage is away")
    try:
        waiting = Collector.objects.waiting_for_storage()
        wait_for(waiting.exists, "the collector to say it waits for storage", system)
        ready = api.get(f"{api.base}/ready/")
        assert ready.status_code == 503 and "storage" in ready.json()["failing"]
        # The outage lasts two tile deadlines (TILE_DEADLINE_SECONDS=8 here): recovery would have
        # re-sent the tiles and, at the dispatcher, failed the job reading its original.
        time.sleep(16)
        body = api.get(f"{api.base}/api/jobs/{job['id']}/").json()
        assert body["status"] in ("queued", "running") and body["error"] == ""
        system.check_alive()
    finally:
        media.unlink()
        away.rename(media)
    assert_complete_and_exact(api, system, job)
    wait_for(lambda: api.get(f"{api.base}/ready/").status_code == 200, "the system to be ready again", system)
    assert not Collector.objects.waiting_for_storage().exists()
