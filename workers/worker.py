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
from collections.abc import Callable

from confluent_kafka import KafkaException, Message
from django.conf import settings

from imagepipe import kafka
from imagepipe.core.codec import CodecError, decode_tile, encode_tile
from imagepipe.core.messages import Heartbeat, MessageError, Result, Task
from imagepipe.core.operations import ChainError, parse_chain
from imagepipe.core.pipeline import process_tile, tile_stats
from imagepipe.core.tiling import Box

logger = logging.getLogger(__name__)


def default_worker_id() -> str:
    return settings.WORKER_ID or f"{socket.gethostname()}-{os.getpid()}"


def process_task(value: bytes, worker: str, partition: int, offset: int) -> tuple[str, bytes]:
    """Turn one task message into (key, result message); a bad task yields an error result."""
    task, pixels = Task.decode(value)
    started = time.perf_counter()
    try:
        steps = parse_chain(task.operations)
        core, padded = Box(*task.core), Box(*task.padded)
        image = decode_tile(pixels)
        if image.size != (padded.width, padded.height):
            raise CodecError(f"tile is {image.size}, its task says {padded.width}x{padded.height}")
        processed = process_tile(image, steps, padded, core, (task.size[0], task.size[1]), task.table)
        stats = tile_stats(processed, task.stat) if task.stat else None
        payload, error = encode_tile(processed), ""
    except (ChainError, CodecError, ValueError, OSError) as exc:
        payload, stats, error = b"", None, f"{type(exc).__name__}: {exc}"
    result = Result(
        job=task.job,
        index=task.index,
        worker=worker,
        duration_ms=round((time.perf_counter() - started) * 1000),
        task_partition=partition,
        task_offset=offset,
        stage=task.stage,
        stats=stats,
        error=error,
    )
    return task.job, result.encode(payload)


class TileWorker:
    def __init__(self, worker_id: str | None = None):
        self.id = worker_id or default_worker_id()
        self.host = socket.gethostname()
        self.tiles_done = 0
        self.current_job = ""
        self.partitions: set[int] = set()
        self.producer = kafka.producer()
        self.consumer = kafka.consumer(kafka.WORKER_GROUP)
        self.last_beat = 0.0

    def _assigned(self, consumer, partitions) -> None:
        self.partitions |= {p.partition for p in partitions}
        logger.info("worker %s assigned %s", self.id, sorted(self.partitions))
        self.heartbeat()

    def _revoked(self, consumer, partitions) -> None:
        self.partitions -= {p.partition for p in partitions}

    def handle(self, message: Message) -> None:
        try:
            key, value = process_task(message.value(), self.id, message.partition(), message.offset())
        except MessageError as exc:
            logger.warning("skipping malformed task at %s@%s: %s", message.partition(), message.offset(), exc)
        else:
            self.current_job = key
            self.publish(kafka.topic(kafka.RESULTS), key, value)
            self.tiles_done += 1
        self.consumer.store_offsets(message)

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
        try:
            while not should_stop():
                if time.monotonic() - self.last_beat >= interval:
                    self.heartbeat()
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
            logger.info("worker %s stopped after %d tiles", self.id, self.tiles_done)
