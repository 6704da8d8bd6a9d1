"""Is each backing service answering? Plain functions for /ready/, /api/system/ and /metrics.

Each check returns a dict with ``"ok"`` and details, never raises, and gives up within a few
seconds, so a dead service makes a slow page rather than a hung one. A failed check carries
``"error"``, a one-line message for a human.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as NoAnswer

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from confluent_kafka import (
    OFFSET_INVALID,
    ConsumerGroupTopicPartitions,
    KafkaError,
    TopicPartition,
)
from django.conf import settings
from django.db import connection

from jobs import storage as files
from pipeline import kafka as kafka_clients
from pipeline.models import Collector, Worker

logger = logging.getLogger(__name__)

KAFKA_TIMEOUT = 3.0
CHANNEL_LAYER_TIMEOUT = 2.0
STORAGE_TIMEOUT = 3.0
# Storage is asked on a thread of its own, so an object store that never answers costs a page
# STORAGE_TIMEOUT, not a hung request; one thread, so such a store holds one thread, not one a call.
_storage_probes = ThreadPoolExecutor(1, thread_name_prefix="storage-probe")
# (group, topic) pairs whose backlog is worth watching: tasks waiting for a worker,
# results waiting for the collector.
LAG_GROUPS = (
    (kafka_clients.WORKER_GROUP, kafka_clients.TASKS),
    (kafka_clients.COLLECTOR_GROUP, kafka_clients.RESULTS),
)


def _failure(check: str, exc: BaseException, **details) -> dict:
    logger.warning("health check %s failed: %s", check, exc)
    reason = exc.args[0] if exc.args else None
    # KafkaException wraps a KafkaError whose str() is a repr; its .str() is the message itself.
    message = reason.str() if isinstance(reason, KafkaError) else str(exc)
    return {"ok": False, **details, "error": message or type(exc).__name__}


@kafka_clients.collected
def kafka() -> dict:
    try:
        metadata = kafka_clients.admin().list_topics(timeout=KAFKA_TIMEOUT)
    except Exception as exc:
        return _failure("kafka", exc, brokers=0)
    return {"ok": len(metadata.brokers) > 0, "brokers": len(metadata.brokers)}


@kafka_clients.collected
def consumer_lag() -> dict:
    """Messages each group has yet to commit, summed over the partitions of its topic."""
    # One budget for the whole check: several calls that each wait 3 s would add up.
    deadline = time.monotonic() + KAFKA_TIMEOUT
    probe = None
    try:
        admin = kafka_clients.admin()
        # All topics rather than the two by name: naming one may auto-create it on some brokers.
        topics = admin.list_topics(timeout=_remaining(deadline)).topics
        # Never subscribed, so it never joins a group; it only asks partition leaders for watermarks.
        probe = kafka_clients.probe(kafka_clients.HEALTH_PROBE)
        groups = [_group_lag(admin, probe, topics, group, name, deadline) for group, name in LAG_GROUPS]
    except Exception as exc:
        return _failure("consumer_lag", exc, groups=[])
    finally:
        if probe is not None:
            probe.close()
    # Messages waiting for a group nobody is in: they will wait for ever.
    orphaned = [g for g in groups if g["lag"] and not g["members"]]
    if orphaned:
        names = ", ".join(f"{g['group']} ({g['lag']} waiting)" for g in orphaned)
        return {"ok": False, "groups": groups, "error": f"no consumer in group {names}"}
    return {"ok": True, "groups": groups}


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(f"Kafka did not answer within {KAFKA_TIMEOUT:g} s")
    return left


def _group_lag(admin, probe, topics: dict, group_name: str, topic_name: str, deadline: float) -> dict:
    group, topic = kafka_clients.group(group_name), kafka_clients.topic(topic_name)
    if topic not in topics:
        raise LookupError(f"topic {topic} does not exist (run manage.py kafka_topics)")
    partitions = sorted(topics[topic].partitions)
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in partitions])
    (future,) = admin.list_consumer_group_offsets([request], request_timeout=_remaining(deadline)).values()
    committed = {
        tp.partition: tp.offset for tp in future.result(timeout=_remaining(deadline)).topic_partitions
    }
    lag = 0
    for partition in partitions:
        _remaining(deadline)  # raises once the check's time is spent
        low, high = kafka_clients.watermarks(probe, TopicPartition(topic, partition), deadline)
        offset = committed.get(partition, OFFSET_INVALID)
        # A group that never committed here starts at the oldest retained message.
        lag += max(0, high - (offset if offset >= 0 else low))
    (described,) = admin.describe_consumer_groups([group], request_timeout=_remaining(deadline)).values()
    description = described.result(timeout=_remaining(deadline))
    return {
        "group": group,
        "topic": topic,
        "lag": lag,
        "partitions": len(partitions),
        "members": len(description.members),
        "state": description.state.name.lower(),
    }


def database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return _failure("database", exc)
    return {"ok": True}


def channel_layer() -> dict:
    layer = get_channel_layer()
    if layer is None:
        return {"ok": False, "error": "no channel layer is configured"}
    try:
        async_to_sync(_round_trip)(layer)
    except TimeoutError:
        return _failure("channel_layer", TimeoutError(f"no answer within {CHANNEL_LAYER_TIMEOUT:g} s"))
    except Exception as exc:
        return _failure("channel_layer", exc)
    return {"ok": True}


async def _round_trip(layer) -> None:
    async with asyncio.timeout(CHANNEL_LAYER_TIMEOUT):
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "health.ping"})
        message = await layer.receive(channel)
    if message.get("type") != "health.ping":
        raise RuntimeError(f"sent a health.ping, received {message!r}")


def storage() -> dict:
    """Does storage answer this process, and is no live collector waiting for it (each says so in
    its report: it may see storage otherwise, from another machine)?"""
    try:
        _storage_probes.submit(files.probe).result(timeout=STORAGE_TIMEOUT)
    except FileNotFoundError:
        pass  # a local root not made yet: the first save makes it
    except NoAnswer:
        return _failure("storage", TimeoutError(f"no answer within {STORAGE_TIMEOUT:g} s"), waiting=[])
    except Exception as exc:
        return _failure("storage", exc, waiting=[])
    try:
        waiting = list(Collector.objects.waiting_for_storage().values_list("id", "storage_error"))
    except Exception as exc:
        return _failure("storage", exc, waiting=[])
    if waiting:
        (first, why), names = waiting[0], [name for name, _ in waiting]
        return {"ok": False, "waiting": names, "error": f"collector {first} is waiting for storage: {why}"}
    return {"ok": True, "waiting": []}


def workers() -> dict:
    """Worker counts by status, counted in the database (rows pile up: one per worker process)."""
    try:
        counts = Worker.objects.count_by_status()
    except Exception as exc:
        return _failure("workers", exc, **dict.fromkeys(Worker.Status.values, 0))
    return {"ok": counts[Worker.Status.ONLINE] > 0, **counts}


def collector() -> dict:
    """Is a collector consuming? From the reports collectors write of themselves (jobs.Collector)."""
    try:
        live = list(Collector.objects.live())
    except Exception as exc:
        return _failure("collector", exc, consuming=0, collectors=[])
    consuming = [c for c in live if c.consuming]
    details = {
        "consuming": len(consuming),
        "collectors": [
            {
                "id": c.id,
                "partitions": c.partitions,
                "lag": c.lag,
                "rebuilds": c.rebuilds,
                "stalled": c.stalled,
                "storage_error": c.storage_error,
                "consuming": c.consuming,
                "last_seen": c.last_seen.isoformat(),
            }
            for c in live
        ],
    }
    if consuming:
        return {"ok": True, **details}
    if not live:
        error = f"no collector has reported in the last {settings.COLLECTOR_STALE_SECONDS:g} s"
    elif any(c.partitions for c in live):
        error = "the collector holds its partitions but has stopped consuming"
    else:
        error = "no collector holds a partition of results or heartbeats"
    return {"ok": False, **details, "error": error}


def system() -> dict:
    broker = kafka()
    # Without a broker the lag check would only spend its own timeout finding out again.
    lag = consumer_lag() if broker["ok"] else {"ok": False, "groups": [], "error": "Kafka is unreachable"}
    return {
        "kafka": broker,
        "lag": lag,
        "database": database(),
        "channel_layer": channel_layer(),
        "storage": storage(),
        "collector": collector(),
        "workers": workers(),
    }
