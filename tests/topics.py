"""Kafka in tests: reading back what the code under test published, removing topics, the broker's pid."""

import gc
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AclBinding, AclBindingFilter
from django.conf import settings

from imagepipe.processes import SECRETS_DIR, role_env
from pipeline import kafka, signing

# Who signs what arrives on each topic (pipeline.signing).
SIGNED_AS = {
    kafka.TASKS: signing.TASK,
    kafka.CANCELLATIONS: signing.CANCELLATION,
    kafka.RESULTS: signing.RESULT,
    kafka.HEARTBEATS: signing.HEARTBEAT,
}


def signed_for(name, key, value) -> signing.Headers:
    """The headers the role that writes ImagePipe's topic ``name`` signs ``value`` with."""
    return signing.sign(SIGNED_AS[name], key, value)


def consumed(name, value, key=None, offset=0, partition=0, signed=True) -> Message:
    """A message as a consumer of ImagePipe's topic ``name`` receives it: signed by the role that
    writes the topic, unless ``signed`` is False."""
    headers = signed_for(name, key, value) if signed else None
    return Message(
        topic=kafka.topic(name), partition=partition, offset=offset, key=key, value=value, headers=headers
    )


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
    """Leave the broker as it was: a test's topics, and the ACLs on them, go when it is done
    (``prefix`` is the settings' KAFKA_TOPIC_PREFIX)."""
    admin = kafka.admin()
    mine = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    for future in admin.delete_topics(mine).values() if mine else ():
        future.result()
    try:
        for future in admin.delete_acls([_matching(b) for b in kafka.acl_bindings(prefix)]).values():
            future.result()
    except KafkaException as exc:  # a broker with no authorizer has no ACLs to delete
        if exc.args[0].code() != KafkaError.SECURITY_DISABLED:
            raise
    del admin
    gc.collect()  # here, not on a librdkafka thread (see pipeline.kafka.collected)


def _matching(b: AclBinding) -> AclBindingFilter:
    return AclBindingFilter(
        b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type
    )


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


def as_role(role: str, secrets: Path = SECRETS_DIR, bootstrap: str = "") -> dict:
    """A client's config holding ``role``'s login only (from ``secrets``), as that role's
    processes do; to ``bootstrap``, or the settings' broker."""
    own = role_env(role, secrets)
    assert own, f"scripts/services.sh left no secrets in {secrets}: the broker runs without security"
    return {
        "bootstrap.servers": bootstrap or settings.KAFKA_BOOTSTRAP_SERVERS,
        "security.protocol": own["KAFKA_SECURITY_PROTOCOL"],
        "sasl.mechanism": own["KAFKA_SASL_MECHANISM"],
        "sasl.username": own["KAFKA_SASL_USERNAME"],
        "sasl.password": own["KAFKA_SASL_PASSWORD"],
        "ssl.ca.location": own["KAFKA_SSL_CA_LOCATION"],
    }


def delivery_error(config: dict, topic: str) -> KafkaError | None:
    """What the broker answers to one message produced to ``topic`` with ``config``."""
    errors: list[KafkaError | None] = []
    producer = Producer({**config, "message.timeout.ms": 10_000})
    producer.produce(topic, b"x", on_delivery=lambda err, msg: errors.append(err))
    producer.flush(15)
    return errors[0] if errors else KafkaError(KafkaError._MSG_TIMED_OUT)
