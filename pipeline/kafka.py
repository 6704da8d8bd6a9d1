"""Every Kafka client ImagePipe uses is built here, the same way.

Topic names carry ``KAFKA_TOPIC_PREFIX`` so several installations (or test
runs) can share one cluster without seeing each other's messages.
"""

from __future__ import annotations

import functools
import gc
import logging
import os
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)
from django.conf import settings

logger = logging.getLogger(__name__)

_P = ParamSpec("_P")
_R = TypeVar("_R")

TASKS, RESULTS, HEARTBEATS, TASKS_DLQ = "tasks", "results", "heartbeats", "tasks.dlq"
RESULTS_DLQ = "results.dlq"  # results and heartbeats the collector refused, with why
CANCELLATIONS = "cancellations"  # key: job id; every worker reads it all
WORKER_GROUP, COLLECTOR_GROUP = "workers", "collector"
DEAD_LETTER_READER, HEALTH_PROBE = "dead-letter-reader", "health-probe"  # the web's

# Passed through untouched so TLS/SASL need no code: KAFKA_SECURITY_PROTOCOL=SASL_SSL etc. A
# secret may instead be read from a file: KAFKA_SASL_PASSWORD_FILE, KAFKA_SSL_KEY_PASSWORD_FILE
# (as compose secrets are).
_PASSTHROUGH = (
    "security.protocol",
    "sasl.mechanism",
    "sasl.username",
    "sasl.password",
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.key.password",
    "ssl.endpoint.identification.algorithm",
)
_SECRETS = ("sasl.password", "ssl.key.password")

# What each role may do, and nothing else (``acl_bindings``; the broker refuses the rest). READ and
# WRITE imply DESCRIBE; WRITE to a topic is all an idempotent producer needs (Kafka 3+).
READ, WRITE, DESCRIBE = AclOperation.READ, AclOperation.WRITE, AclOperation.DESCRIBE
ROLE_GRANTS: dict[str, dict[str, list[tuple[str, AclOperation]]]] = {
    "dispatcher": {"topics": [(TASKS, WRITE), (CANCELLATIONS, WRITE)]},
    "worker": {
        "topics": [
            (TASKS, READ),
            (CANCELLATIONS, READ),
            (RESULTS, WRITE),
            (HEARTBEATS, WRITE),
            (TASKS_DLQ, WRITE),
        ],
        "groups": [(WORKER_GROUP, READ)],
    },
    "collector": {
        "topics": [(RESULTS, READ), (HEARTBEATS, READ), (RESULTS_DLQ, WRITE)],
        "groups": [(COLLECTOR_GROUP, READ)],
    },
    # /ready/, /metrics and the dead letters page: lag, and the dead letters themselves.
    "web": {
        "topics": [(TASKS, DESCRIBE), (RESULTS, DESCRIBE), (TASKS_DLQ, READ), (RESULTS_DLQ, READ)],
        "groups": [(WORKER_GROUP, DESCRIBE), (COLLECTOR_GROUP, DESCRIBE), (DEAD_LETTER_READER, READ)],
    },
}


def topic(name: str) -> str:
    return settings.KAFKA_TOPIC_PREFIX + name


def group(name: str) -> str:
    return settings.KAFKA_TOPIC_PREFIX + name


def _common() -> dict[str, Any]:
    config = {
        "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
        "logger": logging.getLogger("librdkafka"),  # through Django's LOGGING, not raw stderr
    }
    for key in _PASSTHROUGH:
        name = "KAFKA_" + key.replace(".", "_").upper()
        value = os.environ.get(name)
        if not value and key in _SECRETS and os.environ.get(name + "_FILE"):
            with open(os.environ[name + "_FILE"]) as file:
                value = file.read().strip()
        if value:
            config[key] = value
    return config


def producer(**overrides: Any) -> Producer:
    return Producer(
        {
            **_common(),
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": settings.KAFKA_COMPRESSION,
            "linger.ms": 5,
            # librdkafka checks this before compression; leave room for the envelope.
            "message.max.bytes": settings.KAFKA_MAX_MESSAGE_BYTES + 64 * 1024,
            **overrides,
        }
    )


def consumer(group_id: str, **overrides: Any) -> Consumer:
    """A consumer whose offsets are stored by the caller once the work is durable."""
    return Consumer(
        {
            **_common(),
            "group.id": group(group_id),
            "enable.auto.commit": True,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "cooperative-sticky",
            # A member that dies is noticed this long after, and its partitions move on.
            "session.timeout.ms": settings.KAFKA_SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": settings.KAFKA_SESSION_TIMEOUT_MS // 5,
            "fetch.max.bytes": max(52428800, settings.KAFKA_MAX_MESSAGE_BYTES * 2),
            "max.partition.fetch.bytes": settings.KAFKA_MAX_MESSAGE_BYTES + 64 * 1024,
            # What librdkafka fetches ahead of the consumer, at most (a larger message still comes).
            "queued.max.messages.kbytes": settings.KAFKA_CONSUMER_QUEUE_MB * 1024,
            **overrides,
        }
    )


def fetching_ahead(megabytes: int) -> dict[str, Any]:
    """Consumer settings that fetch about ``megabytes`` ahead of the caller, not the default
    ``KAFKA_CONSUMER_QUEUE_MB`` plus a response of up to ``fetch.max.bytes`` on top: what the
    collector, which holds a batch of results as well, keeps in memory whatever its lag. A message
    larger still comes (a fetch always returns its first batch); and with the queue full,
    librdkafka asks again 10 ms later, not a second (``fetch.queue.backoff.ms``), so a short queue
    costs no throughput."""
    return {
        "queued.max.messages.kbytes": megabytes * 1024,
        "fetch.max.bytes": max(megabytes << 20, 1 << 20),
        "max.partition.fetch.bytes": max(megabytes << 18, 1 << 20),  # a quarter a partition
        "fetch.queue.backoff.ms": 10,
    }


def collected(call: Callable[_P, _R]) -> Callable[_P, _R]:
    """Collect the Kafka clients ``call`` drops here, on the calling thread.

    Left as cyclic garbage, a client can be collected on one of librdkafka's own threads,
    which aborts the process (confluent-kafka-python #2129).
    """

    @functools.wraps(call)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return call(*args, **kwargs)
        finally:
            gc.collect()

    return run


# What a broker answers while a partition's leadership settles: a new topic, a restarted broker.
LEADERSHIP_SETTLING = frozenset(
    {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_TOPIC_OR_PART}
)


def transient(error: KafkaError) -> bool:
    """Worth asking again: the client calls it retriable, or a partition's leader is still settling."""
    return bool(error.retriable()) or error.code() in LEADERSHIP_SETTLING


def watermarks(probe: Consumer, partition: TopicPartition, deadline: float) -> tuple[int, int]:
    """A partition's low and high offsets, asking again while the answer is transient (a leader
    still settling just after the topic was made) until ``deadline`` (time.monotonic())."""
    while True:
        try:
            low, high = probe.get_watermark_offsets(partition, timeout=max(deadline - time.monotonic(), 0.1))
            return low, high
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if not (isinstance(error, KafkaError) and transient(error)) or deadline - time.monotonic() <= 0.2:
                raise
            time.sleep(0.1)


def partition(message: Message) -> int:
    """A consumed message's partition (only one not yet produced has none)."""
    found = message.partition()
    if found is None:
        raise ValueError("a message with no partition was never consumed")
    return found


def offset(message: Message) -> int:
    """A consumed message's offset (only one not yet produced has none)."""
    found = message.offset()
    if found is None:
        raise ValueError("a message with no offset was never consumed")
    return found


def where(message: Message) -> str:
    """A message's place, as logs name it: topic[partition]@offset."""
    return f"{message.topic()}[{message.partition()}]@{message.offset()}"


def store_offset(consumer: Consumer, message: Message) -> None:
    """Mark a message done; if its partition moved to another member meanwhile, that one redoes it."""
    try:
        consumer.store_offsets(message)
    except KafkaException as exc:
        logger.info("offset of %s not stored (partition no longer ours): %s", where(message), exc)


def probe(group_id: str) -> Consumer:
    """A consumer that never subscribes or fetches: it asks for watermarks and the group's
    committed offsets on connections no fetch is waiting on (a consumer's own would queue the
    question behind its fetch in flight, up to fetch.wait.max.ms per partition)."""
    return consumer(group_id, **{"enable.auto.commit": False})


def admin() -> AdminClient:
    return AdminClient(_common())


def topic_specs() -> dict[str, dict[str, Any]]:
    """Each topic with its partitions and the config ImagePipe sets explicitly."""
    size = {"max.message.bytes": str(settings.KAFKA_MAX_MESSAGE_BYTES + 64 * 1024)}
    # Tile pixels are kept only as long as a tile can take (and a collector can be down), and no
    # more than a bound per partition, whatever the broker's defaults.
    pixels = {
        **size,
        "retention.ms": str(settings.KAFKA_TILE_RETENTION_HOURS * 3600 * 1000),
        "retention.bytes": str(settings.KAFKA_TILE_RETENTION_MB * 1024 * 1024),
    }
    parked = {**size, "retention.ms": str(settings.KAFKA_DEAD_LETTER_RETENTION_HOURS * 3600 * 1000)}
    return {
        topic(TASKS): {"partitions": settings.KAFKA_TASK_PARTITIONS, "config": pixels},
        topic(RESULTS): {"partitions": settings.KAFKA_RESULT_PARTITIONS, "config": pixels},
        topic(TASKS_DLQ): {"partitions": 1, "config": parked},
        topic(RESULTS_DLQ): {"partitions": 1, "config": parked},
        topic(CANCELLATIONS): {
            "partitions": 1,
            "config": {"cleanup.policy": "compact,delete", "retention.ms": str(7 * 24 * 3600 * 1000)},
        },
        topic(HEARTBEATS): {
            "partitions": 1,
            "config": {"cleanup.policy": "delete", "retention.ms": str(6 * 3600 * 1000)},
        },
    }


def acl_bindings(prefix: str | None = None) -> list[AclBinding]:
    """Every role's ACLs on the topics and groups of this installation (or of the one whose
    KAFKA_TOPIC_PREFIX is ``prefix``), from ``ROLE_GRANTS``."""
    prefix = settings.KAFKA_TOPIC_PREFIX if prefix is None else prefix
    bindings = []
    for role, grants in ROLE_GRANTS.items():
        for kind, resources in (ResourceType.TOPIC, "topics"), (ResourceType.GROUP, "groups"):
            for name, operation in grants.get(resources, []):
                bindings.append(
                    AclBinding(
                        kind,
                        prefix + name,
                        ResourcePatternType.LITERAL,
                        f"User:{role}",
                        "*",
                        operation,
                        AclPermissionType.ALLOW,
                    )
                )
    return bindings
