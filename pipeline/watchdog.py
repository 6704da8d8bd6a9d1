"""A group consumer that watches its own progress and rebuilds itself when it has stopped.

A consumer can fall out of its group and never come back while its process stays alive and
polling (its session timed out under load and the rejoin never came), and nothing says so.
So every long-running consumer (collector, worker) polls through ``WatchedConsumer``, which every
``CONSUMER_CHECK_SECONDS`` asks two questions:

* **stalled**: messages are waiting in the partitions it holds, yet none has arrived for
  ``CONSUMER_STALL_SECONDS``;
* **orphaned**: it has held no partition for ``CONSUMER_STALL_SECONDS`` and the broker does not
  list it as a member of its group (a spare member of a busy group, one of five workers on four
  partitions, is a member and is left alone).

Either way it logs why and rebuilds the consumer in place (close, new consumer, subscribe),
which rejoins the group with a fresh member id. Rebuilding in place, rather than exiting for a
supervisor to restart, keeps the process's other state (a worker's cancellations, counters)
and needs no supervisor; offsets stored before the rebuild are committed by ``close()``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, cast

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaException, Message, TopicPartition
from django.conf import settings

from pipeline import kafka

logger = logging.getLogger(__name__)

WATERMARK_TIMEOUT = 2.0
BATCH_STEP = 4  # messages a batch takes at a time past its first, so its bytes stop it close to its bound

Rebalance = Callable[[Consumer, list[TopicPartition]], None]  # on_assign, on_revoke, on_lost


class StallClock:
    """The one stall rule of every consumer: messages have waited, with none arriving, for
    CONSUMER_STALL_SECONDS. They must be seen waiting for the whole bound, so a message that
    lands on a long-idle consumer just before a check is not taken for a stall."""

    last_arrival: float
    waiting_since: float | None

    def __init__(self) -> None:
        self.reset(time.monotonic())

    def reset(self, now: float) -> None:
        self.last_arrival, self.waiting_since = now, None

    def arrived(self, now: float) -> None:
        self.last_arrival = now

    def stalled(self, waiting: int, now: float) -> bool:
        if not waiting:
            self.waiting_since = None
            return False
        self.waiting_since = self.waiting_since or now
        return now - max(self.waiting_since, self.last_arrival) > settings.CONSUMER_STALL_SECONDS


class WatchedConsumer:
    def __init__(
        self,
        group: str,
        topics: list[str],
        name: str,
        on_assign: Rebalance | None = None,
        on_revoke: Rebalance | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.group, self.topics, self.name, self.config = group, topics, name, config or {}
        self.callbacks = {"on_assign": on_assign or _ignore, "on_revoke": on_revoke or _ignore}
        self.rebuilds = 0
        self.stalled = ""  # why the last rebuild happened, for the operators' views
        self.lag = 0  # messages waiting in the partitions held, as of the last check
        self.clock = StallClock()
        self.consumer: Consumer = kafka.consumer(self.group, **self.config)
        self.probe = kafka.probe(self.group)  # the broker's answers, without waiting on a fetch

    def subscribe(self) -> None:
        self.consumer.subscribe(
            self.topics,
            on_assign=self.callbacks["on_assign"],
            on_revoke=self.callbacks["on_revoke"],
            on_lost=self.callbacks["on_revoke"],
        )
        now = time.monotonic()
        self.clock.reset(now)
        self.unassigned_since, self.next_check = now, now + settings.CONSUMER_CHECK_SECONDS

    def poll(self, timeout: float) -> Message | None:
        try:
            message = self.consumer.poll(timeout)
        except RuntimeError as exc:  # closed behind the loop's back
            self.rebuild(f"its consumer is unusable ({exc})")
            return None
        now = time.monotonic()
        if message is not None and not message.error():
            self.clock.arrived(now)
        if now >= self.next_check:
            self.next_check = now + settings.CONSUMER_CHECK_SECONDS
            self.check(now)
        return message

    def poll_batch(self, timeout: float, most: int, most_bytes: int | None = None) -> list[Message]:
        """The next message (waiting up to ``timeout`` for it) and up to ``most`` - 1 more already
        fetched, stopping once their values pass ``most_bytes``: batches grow with the backlog to a
        bound in count and in memory, and a lone message is not held back for company."""
        first = self.poll(timeout)
        if first is None:
            return []
        batch, size = [first], len(first.value() or b"")
        while len(batch) < most and (most_bytes is None or size < most_bytes):
            try:  # a few at a time: each message's value is copied out as it is taken
                more = self.consumer.consume(min(most - len(batch), BATCH_STEP), 0)
            except RuntimeError as exc:  # closed behind the loop's back
                self.rebuild(f"its consumer is unusable ({exc})")
                break
            if not more:
                break
            batch += more
            size += sum(len(message.value() or b"") for message in more)
        if any(not message.error() for message in batch[1:]):
            self.clock.arrived(time.monotonic())
        return batch

    def check(self, now: float) -> None:
        try:
            reason = self.stuck(now)
        except (
            KafkaException,
            RuntimeError,
            TimeoutError,
        ) as exc:  # the broker is away: nothing to decide yet
            logger.info("%s: watchdog check skipped: %s", self.name, exc)
            return
        if reason:
            self.rebuild(reason)

    def stuck(self, now: float) -> str:
        """Why this consumer is stuck, or "" if it is not."""
        bound = settings.CONSUMER_STALL_SECONDS
        held = self.consumer.assignment()
        self.lag = self.waiting(held)
        if held:
            self.unassigned_since = now
        if self.clock.stalled(self.lag, now):
            return f"{self.lag} messages wait in its partitions but none arrived for {bound:g} s"
        if not held and now - self.unassigned_since > bound and not self.in_group():
            return f"it has held no partition for {bound:g} s and is not a member of its group"
        return ""

    def waiting(self, held: list[TopicPartition]) -> int:
        """Messages between this consumer's position and the end of each partition it holds."""
        if not held:
            return 0
        positions = self.consumer.position(held)
        unread = [tp for tp in positions if tp.offset == OFFSET_INVALID]
        committed: dict[tuple[str, int], int] = {}
        if unread:  # nothing consumed there yet: it starts from the committed offset
            committed = {
                (tp.topic, tp.partition): tp.offset
                for tp in self.probe.committed(unread, timeout=WATERMARK_TIMEOUT)
            }
        lag = 0
        for tp in positions:
            low, high = self.probe.get_watermark_offsets(tp, timeout=WATERMARK_TIMEOUT)
            offset = tp.offset if tp.offset >= 0 else committed.get((tp.topic, tp.partition), -1)
            lag += max(0, high - (offset if offset >= 0 else low))
        return lag

    @property
    def last_message(self) -> float:
        return self.clock.last_arrival

    @kafka.collected
    def in_group(self) -> bool:
        member = self.consumer.memberid()
        if not member:
            return False
        admin = kafka.admin()  # held until the answer comes: a dropped client never answers
        (future,) = admin.describe_consumer_groups([kafka.group(self.group)]).values()
        return any(m.member_id == member for m in future.result(timeout=WATERMARK_TIMEOUT * 2).members)

    def rebuild(self, reason: str) -> None:
        self.rebuilds += 1
        self.stalled = reason
        logger.error("%s: %s; rebuilding its consumer (rebuild %d)", self.name, reason, self.rebuilds)
        self.close()
        self.consumer = kafka.consumer(self.group, **self.config)
        self.subscribe()

    def store_offset(self, message: Message) -> None:
        kafka.store_offset(self.consumer, message)

    def seek(self, message: Message) -> None:
        """Read this message again next (unless its partition has moved to another member)."""
        try:
            # A consumed message always has all three.
            self.consumer.seek(
                TopicPartition(
                    cast(str, message.topic()), cast(int, message.partition()), cast(int, message.offset())
                )
            )
        except KafkaException as exc:
            logger.info("%s: could not rewind to %s: %s", self.name, kafka.where(message), exc)

    def close(self) -> None:
        """Close the consumer (committing the offsets stored so far); ``rebuild`` keeps the probe."""
        try:
            self.consumer.close()
        except RuntimeError:
            pass  # already closed

    def stop(self) -> None:
        self.close()
        self.probe.close()


def _ignore(consumer: Consumer, partitions: list[TopicPartition]) -> None:
    pass
