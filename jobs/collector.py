"""The result collector: one step function per message kind, and the loop around them.

Each result is made durable (tile file, then the Tile row in one transaction)
before its offset is stored, and a duplicate result is a no-op -- so the
collector can be killed at any point and resume without losing or
double-counting a tile.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from functools import partial

from confluent_kafka import Message
from django.conf import settings
from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connections,
    transaction,
)
from django.utils import timezone

from imagepipe import kafka
from imagepipe.core.codec import CodecError, decode_tile
from imagepipe.core.messages import Heartbeat, MessageError, Result
from imagepipe.watchdog import WatchedConsumer
from workers.models import Worker

from .assembly import assemble_job, store_tile
from .dispatch import advance_stage, stage_finished
from .events import push, push_status
from .models import Collector, Job, Tile
from .recovery import recover, resume

logger = logging.getLogger(__name__)
COUNTS: Counter[str] = Counter()  # recorded, duplicates, late, malformed, failed, ignored: logged at stop


def record_result(value: bytes, partition: int | None = None, offset: int | None = None) -> None:
    result, pixels = Result.decode(value)
    job = Job.objects.filter(pk=result.job).first()
    if job is None or job.status in Job.TERMINAL:
        COUNTS["late" if job else "ignored"] += 1  # late: for a job already finished
        logger.info(
            "ignoring result for tile %s of %s job %s",
            result.index,
            job.status if job else "unknown",
            result.job,
        )
        return
    if result.error:
        if job.fail(f"tile {result.index} failed on {result.worker}: {result.error}"):
            push_status(job)
        return
    tile = job.tiles.filter(stage=result.stage, index=result.index).first()
    if tile is None or tile.status == Tile.Status.DONE:
        COUNTS["duplicates" if tile else "ignored"] += 1
        return  # a redelivered result, or an unknown tile: nothing changes
    _check_tile(job, tile, pixels)
    name = store_tile(tile, pixels)
    with transaction.atomic():
        claimed = (
            Tile.objects.pending()
            .filter(pk=tile.pk)
            .update(
                status=Tile.Status.DONE,
                worker=result.worker,
                partition=result.task_partition,
                offset=result.task_offset,
                duration_ms=result.duration_ms,
                finished_at=timezone.now(),
                result=name,
                stats=result.stats,
            )
        )
        if claimed:
            job.record_tile_done()
            COUNTS["recorded"] += 1
    if not claimed:
        COUNTS["duplicates"] += 1
        return
    tile.job, tile.worker, tile.partition, tile.offset, tile.duration_ms = (
        job,
        result.worker,
        result.task_partition,
        result.task_offset,
        result.duration_ms,
    )
    if job.tiles_done == 1:
        push_status(job)
    push(job, tile.event())
    if job.tiles_done == job.tiles_total:
        assemble_job(job)
    elif job.last_stage > tile.stage and stage_finished(job, tile.stage):
        advance_stage(job, tile.stage)


def _check_tile(job: Job, tile: Tile, pixels: bytes) -> None:
    try:
        image = decode_tile(pixels)
    except CodecError as exc:
        raise MessageError(f"tile {tile.index}: {exc}") from None
    box = job.placed_box(tile)
    if image.size != (box.width, box.height):
        raise MessageError(f"tile {tile.index} is {image.size}, expected {(box.width, box.height)}")


def record_heartbeat(value: bytes) -> None:
    Worker.record_heartbeat(Heartbeat.decode(value))


def handle(message: Message) -> None:
    """Route one message to its step. Whatever the message holds, it is recorded or skipped:
    only an unreachable database escapes (``durably`` retries it), so no message can stop the
    collector or come back after a restart."""
    name, where = message.topic(), kafka.where(message)
    try:
        if name == kafka.topic(kafka.RESULTS):
            record_result(message.value(), message.partition(), message.offset())
        elif name == kafka.topic(kafka.HEARTBEATS):
            record_heartbeat(message.value())
    except (OperationalError, InterfaceError):
        raise
    except MessageError as exc:
        COUNTS["malformed"] += 1
        logger.warning("skipping malformed message %s: %s", where, exc)
    except Exception:  # a bug or a message nobody foresaw: skipped, not a crash loop
        COUNTS["failed"] += 1
        logger.exception("skipping message %s that could not be handled", where)


def _log_assignment(consumer, partitions) -> None:
    logger.info("collector assigned %s", ", ".join(f"{p.topic}[{p.partition}]" for p in partitions))


def watched_consumer() -> WatchedConsumer:
    topics = [kafka.topic(kafka.RESULTS), kafka.topic(kafka.HEARTBEATS)]
    return WatchedConsumer(kafka.COLLECTOR_GROUP, topics, "collector", on_assign=_log_assignment)


def run(
    should_stop: Callable[[], bool], poll_seconds: float = 1.0, consumer: WatchedConsumer | None = None
) -> None:
    consumer = consumer or watched_consumer()
    consumer.subscribe()
    logger.info(
        "collector consuming %s from %s as group %s",
        ", ".join(consumer.topics),
        settings.KAFKA_BOOTSTRAP_SERVERS,
        kafka.group(kafka.COLLECTOR_GROUP),
    )
    durably(resume, should_stop)
    next_sweep = next_report = time.monotonic()
    try:
        while not should_stop():
            now = time.monotonic()
            if now >= next_sweep:
                durably(recover, should_stop)
                next_sweep = now + settings.COLLECTOR_SWEEP_SECONDS
            if now >= next_report:
                report(consumer)
                next_report = now + settings.COLLECTOR_REPORT_SECONDS
            message = consumer.poll(poll_seconds)
            if message is None:
                close_old_connections()  # idle: drop a connection that is old or broken
                continue
            if message.error():
                logger.warning("kafka: %s", message.error())
                continue
            if durably(partial(handle, message), should_stop):
                consumer.store_offset(message)  # only once the work is in the database
    finally:
        consumer.stop()  # commits the offsets stored above
        report(consumer, stopped=True)
        logger.info("collector stopped; counts: %s", dict(COUNTS))


def report(consumer: WatchedConsumer, stopped: bool = False) -> None:
    """Write this collector's own state where /ready/, the system strip and /metrics read it."""
    quiet = timedelta(seconds=time.monotonic() - consumer.last_message)
    try:
        held = [] if stopped else [f"{tp.topic}[{tp.partition}]" for tp in consumer.consumer.assignment()]
    except RuntimeError:  # closed behind the loop's back: the watchdog rebuilds it next poll
        held = []
    try:
        Collector.objects.update_or_create(
            id=f"{socket.gethostname()}-{os.getpid()}",
            defaults={
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "last_seen": timezone.now(),
                "last_message_at": timezone.now() - quiet,
                "partitions": held,
                "lag": consumer.lag,
                "rebuilds": consumer.rebuilds,
                "stalled": consumer.stalled[:255],
                "stopped": stopped,
            },
        )
    except (DatabaseError, InterfaceError) as exc:  # the report can wait; the work must not
        logger.warning("could not report the collector's state: %s", str(exc).strip())


def durably(step: Callable[[], object], should_stop: Callable[[], bool]) -> bool:
    """Run a step until the database takes it; False if asked to stop first (nothing stored)."""
    delay = 0.5
    while True:
        try:
            step()
            return True
        except (OperationalError, InterfaceError) as exc:
            if should_stop():
                return False
            logger.warning("database unavailable (%s); retrying in %.1f s", str(exc).strip(), delay)
            connections.close_all()
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
