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
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, KafkaException, Message, TopicPartition
from django.conf import settings

from imagepipe import kafka
from imagepipe.core.codec import CodecError, decode_tile, encode_tile
from imagepipe.core.messages import Heartbeat, MessageError, Result, Task
from imagepipe.core.operations import parse_chain
from imagepipe.core.pipeline import process_tile, tile_stats
from imagepipe.core.tiling import Box

logger = logging.getLogger(__name__)


class Cancellations:
    """Jobs cancelled by their owners, read from the compacted ``cancellations`` topic.

    Every worker reads the whole topic (no consumer group), so each knows every
    cancelled job and drops its remaining tiles without processing them.
    """

    def __init__(self) -> None:
        self.jobs: set[str] = set()
        self.consumer = kafka.consumer(kafka.WORKER_GROUP, **{"enable.auto.commit": False})
        self.partition = TopicPartition(kafka.topic(kafka.CANCELLATIONS), 0, OFFSET_BEGINNING)
        self.consumer.assign([self.partition])

    def read_all(self, timeout: float = 10.0) -> None:
        """Block until every cancellation so far is known: before the first task, not after it."""
        deadline = time.monotonic() + timeout
        _, high = self.consumer.get_watermark_offsets(self.partition, timeout=timeout)
        while time.monotonic() < deadline and self.consumer.position([self.partition])[0].offset < high:
            self.catch_up(0.2)

    def catch_up(self, wait: float = 0) -> None:
        while (message := self.consumer.poll(wait)) is not None:
            if not message.error() and message.key():
                self.jobs.add(message.key().decode())
            wait = 0

    def cancelled(self, job: str) -> bool:
        return job in self.jobs

    def close(self) -> None:
        self.consumer.close()


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
    image = decode_tile(pixels)
    if image.size != (padded.width, padded.height):
        raise CodecError(f"tile is {image.size}, its task says {padded.width}x{padded.height}")
    return process_tile(image, steps, padded, core, (task.size[0], task.size[1]), task.table)


def _result(task: Task, worker: str, started: float, partition: int, offset: int, **extra) -> Result:
    return Result(
        job=task.job,
        index=task.index,
        worker=worker,
        stage=task.stage,
        duration_ms=round((time.perf_counter() - started) * 1000),
        task_partition=partition,
        task_offset=offset,
        **extra,
    )


class TileWorker:
    def __init__(self, worker_id: str | None = None):
        self.id = worker_id or default_worker_id()
        self.host = socket.gethostname()
        self.tiles_done = 0
        self.current_job = ""
        self.partitions: set[int] = set()
        self.producer = kafka.producer()
        self.consumer = kafka.consumer(kafka.WORKER_GROUP)
        self.cancellations = Cancellations()
        self.counters = Counter()
        self.last_beat = 0.0

    def _assigned(self, consumer, partitions) -> None:
        self.partitions |= {p.partition for p in partitions}
        logger.info("worker %s assigned %s", self.id, sorted(self.partitions))
        self.heartbeat()

    def _revoked(self, consumer, partitions) -> None:
        self.partitions -= {p.partition for p in partitions}

    def handle(self, message: Message) -> None:
        """One task: skip it if malformed or cancelled, else process it and publish the result."""
        try:
            task, pixels = Task.decode(message.value())
        except MessageError as exc:
            self.dead_letter(message, f"malformed task: {exc}", "malformed")
        else:
            if self.cancellations.cancelled(task.job):
                self.counters["skipped"] += 1  # cheaply: no decoding, no result
            else:
                self.current_job = task.job
                result, payload = process_task(
                    task, pixels, self.id, message.partition(), message.offset(), settings.WORKER_MAX_ATTEMPTS
                )
                if result.error:
                    self.dead_letter(message, result.error, "failed")
                self.publish(kafka.topic(kafka.RESULTS), task.job, result.encode(payload))
                self.tiles_done += not result.error
        self.consumer.store_offsets(message)

    def dead_letter(self, message: Message, reason: str, counter: str) -> None:
        """Park a task that can't be processed on tasks.dlq, with why and where it came from."""
        logger.warning(
            "dead-lettering task %s[%s]@%s: %s",
            message.topic(),
            message.partition(),
            message.offset(),
            reason,
        )
        headers = [
            ("reason", reason.encode()[:1000]),
            ("worker", self.id.encode()),
            ("source", f"{message.topic()}[{message.partition()}]@{message.offset()}".encode()),
        ]
        self.producer.produce(
            kafka.topic(kafka.TASKS_DLQ), message.value() or b"", key=message.key(), headers=headers
        )
        self.counters[counter] += 1
        self.counters["dead_lettered"] += 1

    def publish(self, topic: str, key: str, value: bytes) -> None:
        """Produce and wait for the broker's acknowledgement; raise if it never comes."""
        failures: list = []
        self.producer.produce(
            topic, value, key=key, on_delivery=lambda err, msg: err and failures.append(err)
        )
        if self.producer.flush(60) or failures:
            raise KafkaException(failures[0] if failures else "result not delivered in 60 s")

    def heartbeat(self, stopping: bool = False) -> None:
        beat = Heartbeat(
            worker=self.id,
            host=self.host,
            pid=os.getpid(),
            tiles_done=self.tiles_done,
            current_job=self.current_job,
            partitions=sorted(self.partitions),
            stopping=stopping,
            counters=dict(self.counters),
        )
        self.producer.produce(kafka.topic(kafka.HEARTBEATS), beat.encode(), key=self.id)
        self.producer.poll(0)
        self.last_beat = time.monotonic()

    def run(self, should_stop: Callable[[], bool]) -> None:
        name = kafka.topic(kafka.TASKS)
        self.consumer.subscribe([name], on_assign=self._assigned, on_revoke=self._revoked)
        logger.info(
            "worker %s consuming %s from %s as group %s",
            self.id,
            name,
            settings.KAFKA_BOOTSTRAP_SERVERS,
            kafka.group(kafka.WORKER_GROUP),
        )
        interval = settings.WORKER_HEARTBEAT_SECONDS
        self.cancellations.read_all()
        try:
            while not should_stop():
                if time.monotonic() - self.last_beat >= interval:
                    self.heartbeat()
                self.cancellations.catch_up()
                message = self.consumer.poll(min(1.0, interval))
                if message is None:
                    self.current_job = ""
                    continue
                if message.error():
                    logger.warning("kafka: %s", message.error())
                    continue
                self.handle(message)
        finally:
            self.heartbeat(stopping=True)
            self.producer.flush(10)
            self.consumer.close()  # commits the offsets stored after each delivered result
            self.cancellations.close()
            logger.info("worker %s stopped after %d tiles", self.id, self.tiles_done)
