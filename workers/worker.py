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

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition
from django.conf import settings

from imagepipe import kafka
from imagepipe.core.codec import CodecError, decode_tile, encode_tile
from imagepipe.core.kernels import ENGINES
from imagepipe.core.messages import Cancellation, Heartbeat, MessageError, Result, Task
from imagepipe.core.operations import parse_chain
from imagepipe.core.pipeline import process_tile, tile_stats
from imagepipe.core.tiling import Box
from imagepipe.watchdog import StallClock, WatchedConsumer

logger = logging.getLogger(__name__)


# Delivery failures that say "the broker is away", not "this message is refused".
_UNAVAILABLE = {KafkaError._MSG_TIMED_OUT, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN}


class NotDelivered(Exception):
    """The broker did not acknowledge a result: the task must be read again."""


class Cancellations:
    """Jobs cancelled by their owners, read from the compacted ``cancellations`` topic.

    Every worker reads the whole topic (no consumer group), so each knows every
    cancelled job and drops its remaining tiles without processing them. Like every consumer
    it watches itself (``check``): records waiting past its position with none arriving for
    CONSUMER_STALL_SECONDS reopen the reader where it stopped.
    """

    def __init__(self, counters: Counter | None = None) -> None:
        self.jobs: dict[str, int] = {}  # job id -> the last generation cancelled
        self.counters = Counter() if counters is None else counters
        self.partition = TopicPartition(kafka.topic(kafka.CANCELLATIONS), 0, OFFSET_BEGINNING)
        self.next_offset = OFFSET_BEGINNING  # after the last record read
        self.clock = StallClock()
        self.next_check = time.monotonic() + settings.CONSUMER_CHECK_SECONDS
        self.consumer = self.open()
        self.probe = kafka.probe(kafka.WORKER_GROUP)  # the end of the topic, without waiting on a fetch

    def open(self) -> Consumer:
        consumer = kafka.consumer(kafka.WORKER_GROUP, **{"enable.auto.commit": False})
        consumer.assign([TopicPartition(self.partition.topic, 0, self.next_offset)])
        return consumer

    def read_all(self, timeout: float = 10.0) -> None:
        """Block until every cancellation so far is known: before the first task, not after it.

        Gives up after ``timeout`` (a broker still electing leaders, say) and reads on as they come.
        """
        deadline = time.monotonic() + timeout
        end = self.end(deadline)
        while end is not None and self.next_offset < end and time.monotonic() < deadline:
            self.catch_up(0.2)
        if end is None or self.next_offset < end:
            logger.warning("cancellations not all read in %g s; reading on as they come", timeout)

    def end(self, deadline: float) -> int | None:
        """The offset reading must reach to know every record so far (none: already there)."""
        while time.monotonic() < deadline:
            try:
                low, high = self.probe.get_watermark_offsets(self.partition, timeout=1.0)
            except KafkaException as exc:  # no leader yet, just after the topic was made
                logger.info("cancellations: %s; asking again", exc)
                time.sleep(0.2)
                continue
            return high if high > low else self.next_offset
        return None

    def catch_up(self, wait: float = 0) -> None:
        while (message := self.consumer.poll(wait)) is not None:
            if not message.error():
                self.read(message)
                self.next_offset = message.offset() + 1
                self.clock.arrived(time.monotonic())
            wait = 0
        if time.monotonic() >= self.next_check:
            self.check()

    def check(self) -> None:
        now = time.monotonic()
        self.next_check = now + settings.CONSUMER_CHECK_SECONDS
        try:
            low, high = self.probe.get_watermark_offsets(self.partition, timeout=1.0)
        except KafkaException as exc:  # the broker is away: nothing to decide yet
            logger.info("cancellations: watchdog check skipped: %s", exc)
            return
        waiting = max(0, high - max(low, self.next_offset))
        if self.clock.stalled(waiting, now):
            logger.error(
                "cancellations: %d records wait but none arrived for %g s; reopening the reader",
                waiting,
                settings.CONSUMER_STALL_SECONDS,
            )
            self.counters["rebuilds"] += 1
            self.consumer.close()
            self.consumer = self.open()
            self.clock.reset(now)

    def read(self, message: Message) -> None:
        """One record; one that can't be read is counted and passed over, never read twice."""
        try:
            self.apply(Cancellation.decode(message.key(), message.value()))
        except MessageError as exc:
            self.counters["malformed"] += 1
            logger.warning(
                "skipping malformed cancellation %s[%s]@%s: %s",
                message.topic(),
                message.partition(),
                message.offset(),
                exc,
            )

    def apply(self, cancellation: Cancellation) -> None:
        if cancellation.generation is None:
            self.jobs.pop(cancellation.job, None)
        else:
            self.jobs[cancellation.job] = cancellation.generation

    def cancelled(self, task: Task) -> bool:
        return task.generation <= self.jobs.get(task.job, -1)

    def close(self) -> None:
        self.consumer.close()
        self.probe.close()


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
    image = decode_tile(pixels)
    if image.size != (padded.width, padded.height):
        raise CodecError(f"tile is {image.size}, its task says {padded.width}x{padded.height}")
    kernels = ENGINES[settings.WORKER_KERNELS]
    return process_tile(image, steps, padded, core, (task.size[0], task.size[1]), task.table, kernels)


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
        self.consumer = WatchedConsumer(
            kafka.WORKER_GROUP,
            [kafka.topic(kafka.TASKS)],
            f"worker {self.id}",
            on_assign=self._assigned,
            on_revoke=self._revoked,
        )
        self.counters = Counter()
        self.cancellations = Cancellations(self.counters)
        self.last_beat = 0.0

    def _assigned(self, consumer, partitions) -> None:
        self.partitions |= {p.partition for p in partitions}
        logger.info("worker %s assigned %s", self.id, sorted(self.partitions))
        self.heartbeat()

    def _revoked(self, consumer, partitions) -> None:
        self.partitions -= {p.partition for p in partitions}

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
            task, pixels = Task.decode(message.value())
        except MessageError as exc:
            self.dead_letter(message, f"malformed task: {exc}", "malformed")
            return
        if self.cancellations.cancelled(task):
            self.counters["skipped"] += 1  # cheaply: no decoding, no result
            return
        self.current_job = task.job
        result, payload = process_task(
            task, pixels, self.id, message.partition(), message.offset(), settings.WORKER_MAX_ATTEMPTS
        )
        if result.error:
            self.dead_letter(message, result.error, "failed")
        self.publish(kafka.topic(kafka.RESULTS), task.job, result.encode(payload))
        self.tiles_done += not result.error

    def dead_letter(self, message: Message, reason: str, counter: str) -> None:
        """Park a task that can't be processed on tasks.dlq, with why and where it came from."""
        logger.warning("dead-lettering task %s: %s", kafka.where(message), reason)
        headers = [
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
        self.producer.produce(
            topic, value, key=key, on_delivery=lambda err, msg: err and failures.append(err)
        )
        if self.producer.flush(60):
            raise NotDelivered("no acknowledgement from the broker in 60 s")
        if failures:
            error = failures[0]
            if error.retriable() or error.code() in _UNAVAILABLE:
                raise NotDelivered(error.str())
            raise KafkaException(error)  # this message will never go through: dead-lettered

    def heartbeat(self, stopping: bool = False) -> None:
        beat = Heartbeat(
            worker=self.id,
            host=self.host,
            pid=os.getpid(),
            tiles_done=self.tiles_done,
            current_job=self.current_job,
            partitions=sorted(self.partitions),
            stopping=stopping,
            counters=dict(+(self.counters + Counter(rebuilds=self.consumer.rebuilds))),
        )
        self.producer.produce(kafka.topic(kafka.HEARTBEATS), beat.encode(), key=self.id)
        self.producer.poll(0)
        self.last_beat = time.monotonic()

    def run(self, should_stop: Callable[[], bool]) -> None:
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
            self.consumer.stop()  # commits the offsets stored after each delivered result
            self.cancellations.close()
            logger.info("worker %s stopped after %d tiles", self.id, self.tiles_done)
