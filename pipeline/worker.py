"""The tile worker: consume a task, process it, publish the result, then store the offset.

Workers need only the broker: the pixels travel in the task and the result, so a
worker never touches the database or file storage.  The offset of a task is
stored only after its result is acknowledged by the broker, so a worker killed
mid-tile loses nothing -- the task is redelivered to another member of the group.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import Counter

from confluent_kafka import KafkaError, KafkaException, Message
from django.conf import settings

from imagepipe.core.codec import CodecError, decode_tile, encode_tile
from imagepipe.core.kernels import ENGINES
from imagepipe.core.operations import parse_chain
from imagepipe.core.pipeline import process_tile, tile_stats
from imagepipe.core.tiling import Box

from . import kafka, signing
from .cancellations import Cancellations
from .loop import Loop
from .messages import Heartbeat, MessageError, Result, Task
from .watchdog import WatchedConsumer

logger = logging.getLogger(__name__)


# Delivery failures that say "the broker is away", not "this message is refused".
_UNAVAILABLE = {KafkaError._MSG_TIMED_OUT, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN}


class NotDelivered(Exception):
    """The broker did not acknowledge a result: the task must be read again."""


def describe_kernels(engine: str) -> str:
    """Which operations this worker computes with a faster exact route, for its log."""
    fast = sorted(ENGINES[engine])
    return f"{engine} ({', '.join(fast)} through OpenCV; Pillow for the rest)" if fast else "Pillow only"


def default_worker_id() -> str:
    return settings.WORKER_ID or f"{socket.gethostname()}-{os.getpid()}"


def process_task(
    task: Task, pixels: bytes, worker: str, partition: int, offset: int, attempts: int = 1
) -> tuple[Result, bytes]:
    """Process one tile, trying up to ``attempts`` times; the last failure becomes an error result."""
    started = time.perf_counter()
    error = ""
    for attempt in range(1, attempts + 1):
        try:
            processed = _process(task, pixels)
        except Exception as exc:  # any failing operation: retried, then dead-lettered
            error = f"{type(exc).__name__}: {exc}"
            logger.warning(
                "tile %s of job %s failed (attempt %d of %d): %s",
                task.index,
                task.job,
                attempt,
                attempts,
                error,
            )
            continue
        stats = tile_stats(processed, task.stat) if task.stat else None
        return _result(task, worker, started, partition, offset, stats=stats), encode_tile(processed)
    return _result(task, worker, started, partition, offset, error=f"failed {attempts} times: {error}"), b""


def _process(task: Task, pixels: bytes):
    steps = parse_chain(task.operations)
    core, padded = Box(*task.core), Box(*task.padded)
    source = Box(*task.source) if task.source else None
    read = source or padded
    image = decode_tile(pixels)
    if image.size != (read.width, read.height):
        raise CodecError(f"tile is {image.size}, its task says {read.width}x{read.height}")
    kernels = ENGINES[settings.WORKER_KERNELS]
    size = (task.size[0], task.size[1])
    return process_tile(image, steps, padded, core, size, task.table, kernels, source)


def _result(task: Task, worker: str, started: float, partition: int, offset: int, **extra) -> Result:
    return Result(
        job=task.job,
        index=task.index,
        worker=worker,
        stage=task.stage,
        duration_ms=round((time.perf_counter() - started) * 1000),
        task_partition=partition,
        task_offset=offset,
        nonce=task.nonce,
        **extra,
    )


class TileWorker(Loop):
    name = "worker"

    def __init__(self, worker_id: str | None = None):
        super().__init__()
        self.id = worker_id or default_worker_id()
        self.name = f"worker {self.id}"
        signing.require_keys(signing.TASK, signing.RESULT)
        self.host = socket.gethostname()
        self.tiles_done = 0
        self.current_job = ""
        self.partitions: set[int] = set()
        self.producer = kafka.producer()
        self.consumer = WatchedConsumer(
            kafka.WORKER_GROUP,
            [kafka.topic(kafka.TASKS)],
            self.name,
            on_assign=self._assigned,
            on_revoke=self._revoked,
        )
        self.cancellations = Cancellations(self.counters)
        self.last_beat = 0.0

    def _assigned(self, consumer, partitions) -> None:
        self.partitions |= {p.partition for p in partitions}
        logger.info("worker %s assigned %s", self.id, sorted(self.partitions))
        self.heartbeat()

    def _revoked(self, consumer, partitions) -> None:
        self.partitions -= {p.partition for p in partitions}

    def start(self) -> None:
        self.consumer.subscribe()
        niceness = os.nice(settings.WORKER_NICE)
        logger.info(
            "worker %s consuming %s from %s as group %s; kernels: %s; niceness %d",
            self.id,
            ", ".join(self.consumer.topics),
            settings.KAFKA_BOOTSTRAP_SERVERS,
            kafka.group(kafka.WORKER_GROUP),
            describe_kernels(settings.WORKER_KERNELS),
            niceness,
        )
        self.cancellations.read_all()

    def step(self) -> int:
        """Beat when due, read new cancellations, then handle the next task; 1 if there was one."""
        interval = settings.WORKER_HEARTBEAT_SECONDS
        if time.monotonic() - self.last_beat >= interval:
            self.heartbeat()
        self.cancellations.catch_up()
        message = self.consumer.poll(min(1.0, interval))
        if message is None:
            self.current_job = ""
            return 0
        if message.error():
            logger.warning("kafka: %s", message.error())
            return 0
        self.handle(message)
        return 1

    def stop(self) -> None:
        self.heartbeat(stopped=True)
        self.producer.flush(10)
        self.consumer.stop()  # commits the offsets stored after each delivered result
        self.cancellations.close()
        logger.info("worker %s stopped after %d tiles", self.id, self.tiles_done)

    def handle(self, message: Message) -> None:
        """One task: skip it if malformed or cancelled, else process it and publish the result.

        Never raises on account of the message: whatever it holds, it is dealt with (processed,
        skipped or dead-lettered) and its offset stored, so no task can stop a worker or come back
        after a restart. Only a broker that won't take the result leaves the offset unstored; the
        task is then read again.
        """
        try:
            self.process(message)
        except NotDelivered as exc:
            logger.warning(
                "result of %s not delivered (%s); reading the task again", kafka.where(message), exc
            )
            self.consumer.seek(message)
            return
        except Exception as exc:  # a bug or a message nobody foresaw: never a crash loop
            logger.exception("task %s could not be handled", kafka.where(message))
            self.dead_letter(message, f"unhandled {type(exc).__name__}: {exc}", "failed")
        self.consumer.store_offset(message)

    def process(self, message: Message) -> None:
        try:
            signing.check(signing.TASK, message)
        except signing.Unsigned as exc:  # not the dispatcher's: never run, never answered
            self.dead_letter(message, f"refused task: {exc}", "unsigned")
            return
        try:
            task, pixels = Task.decode(message.value())
        except MessageError as exc:
            self.dead_letter(message, f"malformed task: {exc}", "malformed")
            return
        if self.cancellations.cancelled(task):
            self.counters["skipped"] += 1  # cheaply: no decoding, no result
            return
        self.current_job = task.job
        place = kafka.partition(message), kafka.offset(message)
        result, payload = process_task(task, pixels, self.id, *place, settings.WORKER_MAX_ATTEMPTS)
        if result.error:
            self.dead_letter(message, result.error, "failed")
        self.publish(kafka.topic(kafka.RESULTS), task.job, result.encode(payload))
        if not result.error:
            self.tiles_done += 1

    def dead_letter(self, message: Message, reason: str, counter: str) -> None:
        """Park a task that can't be processed on tasks.dlq, with why and where it came from."""
        logger.warning("dead-lettering task %s: %s", kafka.where(message), reason)
        headers: list[tuple[str, str | bytes | None]] = [
            ("reason", reason.encode(errors="replace")[:1000]),
            ("worker", self.id.encode()),
            ("source", kafka.where(message).encode()),
        ]
        self.counters[counter] += 1
        try:
            self.producer.produce(
                kafka.topic(kafka.TASKS_DLQ), message.value() or b"", key=message.key(), headers=headers
            )
        except (BufferError, KafkaException) as exc:  # parking is best effort; skipping is not
            logger.error("could not dead-letter task %s: %s", kafka.where(message), exc)
            return
        self.counters["dead_lettered"] += 1

    def publish(self, topic: str, key: str, value: bytes) -> None:
        """Produce and wait for the broker's acknowledgement; NotDelivered if it never comes."""
        failures: list[KafkaError] = []

        def delivered(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                failures.append(err)

        headers = signing.sign(signing.RESULT, key, value)
        self.producer.produce(topic, value, key=key, on_delivery=delivered, headers=headers)
        if self.producer.flush(60):
            raise NotDelivered("no acknowledgement from the broker in 60 s")
        if failures:
            error = failures[0]
            if error.retriable() or error.code() in _UNAVAILABLE:
                raise NotDelivered(error.str())
            raise KafkaException(error)  # this message will never go through: dead-lettered

    def heartbeat(self, stopped: bool = False) -> None:
        """Tell the collector this worker is alive (or, with ``stopped``, that it has stopped)."""
        counters = Counter(self.counters)
        counters["rebuilds"] = self.consumer.rebuilds
        beat = Heartbeat(
            worker=self.id,
            host=self.host,
            pid=os.getpid(),
            tiles_done=self.tiles_done,
            current_job=self.current_job,
            partitions=sorted(self.partitions),
            stopped=stopped,
            counters={name: count for name, count in counters.items() if count > 0},
        )
        value = beat.encode()
        headers = signing.sign(signing.HEARTBEAT, self.id, value)
        self.producer.produce(kafka.topic(kafka.HEARTBEATS), value, key=self.id, headers=headers)
        self.producer.poll(0)
        self.last_beat = time.monotonic()
