"""The dead-letter topic, read for people: the latest tasks workers parked on tasks.dlq, and why.

A short-lived consumer assigns explicit offsets (the last ``limit`` of each partition) and never
joins a group or commits, so reading changes nothing for anyone. Everything runs against one
deadline: a broker that does not answer is reported as unreachable within seconds.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import cast

from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from jobs.models import Job
from pipeline import kafka
from pipeline.messages import MessageError, Task

TIMEOUT = 3.0  # as the health checks'
LIMIT, MAX_LIMIT = 100, 500
_OLDEST = datetime.min.replace(tzinfo=UTC)


class Unreachable(Exception):
    """The broker did not answer within the deadline."""


@dataclass
class DeadLetter:
    time: datetime | None  # when the worker parked it: the message's timestamp
    reason: str  # the headers the worker set (pipeline.worker.TileWorker.dead_letter)
    worker: str
    source: str  # where the task was read: tasks[partition]@offset
    partition: int  # its place on tasks.dlq
    offset: int
    size: int  # bytes of the parked message
    job: str = ""  # from the task, when it decodes
    stage: int | None = None
    index: int | None = None
    undecodable: str = ""  # why it did not decode
    job_exists: bool = False

    def as_dict(self) -> dict:
        return {**asdict(self), "time": self.time.isoformat() if self.time else None}


@dataclass
class Reading:
    letters: list[DeadLetter]  # newest first
    total: int  # messages on the topic now, across its partitions


@kafka.collected
def latest(limit: int = LIMIT, timeout: float | None = None) -> Reading:
    """The newest ``limit`` dead letters across the topic's partitions; Unreachable past ``timeout``
    (``TIMEOUT`` by default)."""
    deadline = time.monotonic() + (TIMEOUT if timeout is None else timeout)
    reader = kafka.consumer(
        kafka.DEAD_LETTER_READER, **{"enable.auto.commit": False, "enable.partition.eof": True}
    )
    try:
        marks = watermarks(reader, deadline)
        letters = _read(reader, marks, limit, deadline)
    except KafkaException as exc:
        raise Unreachable(_explain(exc)) from None
    finally:
        reader.close()
    letters = sorted(letters, key=lambda d: (d.time or _OLDEST, d.partition, d.offset), reverse=True)[:limit]
    _mark_known_jobs(letters)
    return Reading(letters, _total(marks))


@kafka.collected
def count(timeout: float = TIMEOUT) -> int:
    """Messages on tasks.dlq now: the sum of its partitions' high minus low watermarks."""
    reader = kafka.probe(kafka.DEAD_LETTER_READER)
    try:
        return _total(watermarks(reader, time.monotonic() + timeout))
    except KafkaException as exc:
        raise Unreachable(_explain(exc)) from None
    finally:
        reader.close()


def watermarks(reader: Consumer, deadline: float) -> dict[int, tuple[int, int]]:
    """Each partition of tasks.dlq with its low and high offsets (none while the topic is missing)."""
    name = kafka.topic(kafka.TASKS_DLQ)
    # All topics rather than the one by name: naming it may auto-create it on some brokers.
    topics = reader.list_topics(timeout=_left(deadline)).topics
    partitions = sorted(topics[name].partitions) if name in topics else []
    return {p: kafka.watermarks(reader, TopicPartition(name, p), deadline) for p in partitions}


def _total(marks: dict[int, tuple[int, int]]) -> int:
    return sum(high - low for low, high in marks.values())


def _read(
    reader: Consumer, marks: dict[int, tuple[int, int]], limit: int, deadline: float
) -> list[DeadLetter]:
    """The messages from ``limit`` before each partition's end up to that end."""
    ends = {p: high for p, (low, high) in marks.items() if high > low}
    name = kafka.topic(kafka.TASKS_DLQ)
    reader.assign([TopicPartition(name, p, max(marks[p][0], high - limit)) for p, high in ends.items()])
    letters: list[DeadLetter] = []
    while ends:
        for message in reader.consume(500, timeout=min(_left(deadline), 0.5)):
            # A fetched message and a partition's end both have a partition and an offset.
            error = message.error()
            partition, offset = cast(int, message.partition()), cast(int, message.offset())
            if error and error.code() != KafkaError._PARTITION_EOF:
                raise KafkaException(error)
            if not error and offset < ends.get(partition, -1):
                letters.append(_letter(message))
            if error or offset >= ends.get(partition, 0) - 1:
                ends.pop(partition, None)  # read to the end seen at the start
    return letters


def _letter(message: Message) -> DeadLetter:
    # A fetched message's headers are a list of (str, bytes | None); a dict is only for producing.
    fetched = cast("list[tuple[str, bytes | None]]", message.headers() or [])
    headers = {key: (value or b"").decode(errors="replace") for key, value in fetched}
    kind, stamp = message.timestamp()
    value = message.value() or b""
    letter = DeadLetter(
        time=None if kind == TIMESTAMP_NOT_AVAILABLE else datetime.fromtimestamp(stamp / 1000, UTC),
        reason=headers.get("reason", ""),
        worker=headers.get("worker", ""),
        source=headers.get("source", ""),
        partition=cast(int, message.partition()),
        offset=cast(int, message.offset()),
        size=len(value),
    )
    try:
        task, _ = Task.decode(value)
    except MessageError as exc:
        letter.undecodable = str(exc)
    else:
        letter.job, letter.stage, letter.index = task.job, task.stage, task.index
    return letter


def _mark_known_jobs(letters: list[DeadLetter]) -> None:
    """Which letters name a job that still exists (one query): the page links to those."""
    ids = {job for letter in letters if (job := _uuid(letter.job)) is not None}
    known = set(Job.objects.filter(pk__in=ids).values_list("pk", flat=True))
    for letter in letters:
        if _uuid(letter.job) in known:
            letter.job, letter.job_exists = str(_uuid(letter.job)), True  # as the job's URL spells it


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise Unreachable("the broker did not answer in time")
    return left


def _explain(exc: KafkaException) -> str:
    # KafkaException wraps a KafkaError whose str() is a repr; its .str() is the message itself.
    error = exc.args[0] if exc.args else None
    return error.str() if isinstance(error, KafkaError) else str(exc)
