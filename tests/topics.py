"""Kafka in tests: reading back what the code under test published, removing topics, the broker's pid."""

import gc
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Message, TopicPartition

from pipeline import kafka


def read_topic(name, count):
    """The first ``count`` records of ImagePipe's topic ``name`` (fewer if none comes for 10 s)."""
    reader = kafka.consumer("test-reader", **{"enable.auto.commit": False})
    reader.assign([TopicPartition(kafka.topic(name), p, OFFSET_BEGINNING) for p in range(2)])
    messages: list[Message] = []
    while len(messages) < count and (message := reader.poll(10)) is not None:
        if not message.error():
            messages.append(message)
    reader.close()
    return messages


def delete_topics(prefix: str) -> None:
    """Leave the broker as it was: a test's topics go when it is done."""
    admin = kafka.admin()
    mine = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    for future in admin.delete_topics(mine).values() if mine else ():
        future.result()
    del admin
    gc.collect()  # here, not on a librdkafka thread (see pipeline.kafka.collected)


def all_records(name):
    """Every record on ImagePipe's topic ``name`` now, from all its partitions."""
    reader = kafka.consumer("test-reader", **{"enable.auto.commit": False})
    topic = kafka.topic(name)
    partitions = reader.list_topics(topic, timeout=10).topics[topic].partitions
    ends = {p: reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions}
    reader.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p, (lo, hi) in ends.items() if hi > lo])
    remaining = sum(high - low for low, high in ends.values())
    messages: list[Message] = []
    while remaining and (message := reader.poll(10)) is not None:
        if not message.error():
            messages.append(message)
            remaining -= 1
    reader.close()
    return messages


def broker_pid() -> int:
    """The local broker's process (scripts/services.sh writes its pid file)."""
    return int((Path(__file__).resolve().parent.parent / "var/kafka/kafka.pid").read_text().split()[0])
