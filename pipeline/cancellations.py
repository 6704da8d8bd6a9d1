"""What every worker knows of cancelled jobs: the compacted ``cancellations`` topic, read whole."""

from __future__ import annotations

import logging
import time
from collections import Counter

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition
from django.conf import settings

from . import kafka, signing
from .messages import Cancellation, MessageError, Task
from .watchdog import StallClock

logger = logging.getLogger(__name__)


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
                self.next_offset = kafka.offset(message) + 1
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
        """One record; one that can't be read, or that the dispatcher did not sign, is counted
        and passed over, never read twice."""
        try:
            signing.check(signing.CANCELLATION, message)
            self.apply(Cancellation.decode(message.key(), message.value()))
        except signing.Unsigned as exc:
            self.counters["unsigned"] += 1
            logger.warning("refusing cancellation %s: %s", kafka.where(message), exc)
        except MessageError as exc:
            self.counters["malformed"] += 1
            logger.warning("skipping malformed cancellation %s: %s", kafka.where(message), exc)

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
