"""pipeline.watchdog against the real broker: a consumer that stopped consuming rebuilds itself."""

import time

import pytest

from pipeline import kafka
from pipeline.watchdog import BATCH_STEP, StallClock, WatchedConsumer


@pytest.fixture(autouse=True)
def quick_watchdog(settings):
    settings.CONSUMER_STALL_SECONDS = 2
    settings.CONSUMER_CHECK_SECONDS = 0.25


@pytest.fixture
def watched(kafka_topics):
    consumers = []

    def make(name="test"):
        consumer = WatchedConsumer(kafka.COLLECTOR_GROUP, [kafka.topic(kafka.HEARTBEATS)], name)
        consumer.subscribe()
        consumers.append(consumer)
        return consumer

    yield make
    for consumer in consumers:
        consumer.stop()


def poll_until(consumers, condition, timeout=40):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = [c.poll(0.2) for c in consumers]
        if condition(messages):
            return messages
    raise AssertionError("timed out")


def publish(count=3):
    producer = kafka.producer()
    for n in range(count):
        producer.produce(kafka.topic(kafka.HEARTBEATS), b"beat %d" % n)
    assert producer.flush(10) == 0


def received(messages):
    return any(m is not None and not m.error() for m in messages)


def test_a_paused_consumer_with_messages_waiting_rebuilds_and_reads_them(watched, caplog):
    consumer = watched()
    poll_until([consumer], lambda _: consumer.consumer.assignment())
    consumer.consumer.pause(consumer.consumer.assignment())  # stuck: assigned, fetching nothing
    publish()
    poll_until([consumer], received)
    assert consumer.rebuilds == 1
    assert consumer.stalled == "3 messages wait in its partitions but none arrived for 2 s"
    assert "rebuilding its consumer (rebuild 1)" in caplog.text


def test_a_consumer_closed_behind_the_loops_back_is_rebuilt(watched):
    consumer = watched()
    poll_until([consumer], lambda _: consumer.consumer.assignment())
    consumer.consumer.close()
    publish()
    poll_until([consumer], received)
    assert consumer.rebuilds == 1 and consumer.stalled.startswith("its consumer is unusable")


def test_a_spare_member_without_partitions_is_left_alone(watched):
    first, second = watched("first"), watched("second")  # one partition between two members
    poll_until([first, second], lambda _: first.consumer.assignment() or second.consumer.assignment())
    spare = second if first.consumer.assignment() else first
    started = time.monotonic()
    while time.monotonic() - started < 4:  # twice the bound
        first.poll(0.2), second.poll(0.2)
    assert not spare.consumer.assignment() and (first.rebuilds, second.rebuilds) == (0, 0)


def test_a_quiet_consumer_with_nothing_waiting_is_left_alone(watched):
    consumer = watched()
    poll_until([consumer], lambda _: consumer.consumer.assignment())
    started = time.monotonic()
    while time.monotonic() - started < 4:  # twice the bound
        consumer.poll(0.2)
    assert consumer.rebuilds == 0 and consumer.lag == 0


def test_a_consumer_that_left_its_group_behind_the_loops_back_rejoins(watched):
    consumer = watched()
    poll_until([consumer], lambda _: consumer.consumer.assignment())
    consumer.consumer.unsubscribe()  # out of the group, polling on, as the stalled collector was
    publish()
    poll_until([consumer], received)
    assert consumer.rebuilds == 1
    assert consumer.stalled == "it has held no partition for 2 s and is not a member of its group"


def test_a_message_landing_on_a_long_idle_consumer_is_not_a_stall():
    clock = StallClock()
    clock.reset(0.0)  # then nothing for a minute, then one message waits as the check comes
    assert not clock.stalled(1, now=60.0)
    assert not clock.stalled(1, now=61.0)
    assert clock.stalled(1, now=62.5)  # still waiting past the 2 s bound: stalled


def test_an_arrival_or_an_empty_queue_restarts_the_stall_clock():
    clock = StallClock()
    clock.reset(0.0)
    clock.stalled(5, now=1.0)
    clock.arrived(2.5)
    assert not clock.stalled(5, now=4.0)
    assert not clock.stalled(0, now=10.0)
    assert not clock.stalled(5, now=11.0) and clock.stalled(5, now=13.5)


def test_a_batch_is_what_has_arrived_up_to_its_bound_in_order_and_a_lone_message_is_not_held(watched):
    consumer = watched()
    poll_until([consumer], lambda _: consumer.consumer.assignment())
    publish(10)
    batches: list[list] = []
    deadline = time.monotonic() + 40
    while sum(map(len, batches)) < 10 and time.monotonic() < deadline:
        batches.append(consumer.poll_batch(0.2, 4))
    assert [m.value() for batch in batches for m in batch] == [b"beat %d" % n for n in range(10)]
    assert max(map(len, batches)) == 4  # the ten arrived together: batches fill to the bound

    publish(1)
    started = time.monotonic()
    (lone,) = consumer.poll_batch(30, 4)
    assert lone.value() == b"beat 0" and time.monotonic() - started < 30  # not held for company


def test_a_batch_stops_once_its_messages_pass_its_bytes(watched):
    consumer = watched()
    poll_until([consumer], lambda _: consumer.consumer.assignment())
    publish(12)  # 6 bytes each ("beat 0" ...)
    batches: list[list] = []
    deadline = time.monotonic() + 40
    while sum(map(len, batches)) < 12 and time.monotonic() < deadline:
        batches.append(consumer.poll_batch(0.2, 100, most_bytes=12))
    assert [m.value() for batch in batches for m in batch] == [b"beat %d" % n for n in range(12)]
    # 6 bytes, then a step of BATCH_STEP more passes 12: the batch stops there, far below 100
    assert max(map(len, batches)) == 1 + BATCH_STEP
