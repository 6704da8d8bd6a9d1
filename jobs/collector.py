"""The result collector: one step function per message kind, and the loop around them.

Each result is made durable (tile file, then the Tile row in one transaction)
before its offset is stored, and a duplicate result is a no-op -- so the
collector can be killed at any point and resume without losing or
double-counting a tile.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable

from confluent_kafka import Message
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import close_old_connections, transaction
from django.db.models import F
from django.utils import timezone

from imagepipe import kafka
from imagepipe.core.codec import CodecError, decode_tile
from imagepipe.core.messages import Heartbeat, MessageError, Result
from imagepipe.core.pipeline import assemble
from workers.models import Worker

from .events import push, push_status
from .models import Job, Tile

logger = logging.getLogger(__name__)


def record_result(value: bytes, partition: int | None = None, offset: int | None = None) -> None:
    result, pixels = Result.decode(value)
    job = Job.objects.filter(pk=result.job).first()
    if job is None or job.status in Job.TERMINAL:
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
    tile = job.tiles.filter(index=result.index).first()
    if tile is None or tile.status == Tile.Status.DONE:
        return  # unknown index, or a redelivered result: nothing changes
    _check_tile(job, tile, pixels)
    name = _store_tile(tile, pixels)
    with transaction.atomic():
        claimed = Tile.objects.filter(pk=tile.pk, status=Tile.Status.PENDING).update(
            status=Tile.Status.DONE,
            worker=result.worker,
            partition=result.task_partition,
            offset=result.task_offset,
            duration_ms=result.duration_ms,
            finished_at=timezone.now(),
            result=name,
        )
        if claimed:
            job.record_tile_done()
    if not claimed:
        return
    tile.worker, tile.job = result.worker, job
    if job.tiles_done == 1:
        push_status(job)
    push(job, tile.event())
    if job.tiles_done == job.tiles_total:
        assemble_job(job)


def _check_tile(job: Job, tile: Tile, pixels: bytes) -> None:
    image, box = decode_tile(pixels), job.output_box(tile)
    if image.size != (box.width, box.height):
        raise CodecError(f"tile {tile.index} is {image.size}, expected {(box.width, box.height)}")


def _store_tile(tile: Tile, pixels: bytes) -> str:
    name = f"tiles/{tile.job_id}/{tile.index}.tile"
    default_storage.delete(name)  # an earlier, uncounted attempt may have written it
    return default_storage.save(name, ContentFile(pixels))


def assemble_job(job: Job) -> None:
    """Build, store and publish the result once every tile is in (only one caller wins)."""
    if not job.claim_assembly():
        return
    push_status(job)
    try:
        name = _store_result(job)
    except Exception as exc:
        logger.exception("assembling job %s failed", job.pk)
        job.fail(f"assembling the result failed: {exc}")
    else:
        job.finish(name)
        logger.info("job %s done: %s", job.pk, name)
        _discard_tiles(job)
    push_status(job)


def _store_result(job: Job) -> str:
    tiles = job.tiles.only("x", "y", "width", "height", "result").order_by("index")
    image = assemble(
        job.output_size, job.output_mode, ((job.output_box(tile), _read_tile(tile)) for tile in tiles)
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=settings.RESULT_PNG_COMPRESS_LEVEL)
    name = f"results/{job.pk}.png"
    default_storage.delete(name)
    return default_storage.save(name, ContentFile(buffer.getvalue()))


def _read_tile(tile: Tile):
    with default_storage.open(tile.result.name, "rb") as handle:
        return decode_tile(handle.read())


def _discard_tiles(job: Job) -> None:
    """The stored result now holds every tile's pixels; the tile files can go."""
    for name in job.tiles.exclude(result="").values_list("result", flat=True):
        default_storage.delete(name)


def resume_assemblies() -> None:
    """Finish jobs whose last tile landed before a collector stopped mid-assembly."""
    stuck = Job.objects.filter(
        status__in=[Job.Status.RUNNING, Job.Status.ASSEMBLING], tiles_done=F("tiles_total")
    )
    for job in stuck:
        Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING)
        job.status = Job.Status.RUNNING
        assemble_job(job)


def record_heartbeat(value: bytes) -> None:
    Worker.record_heartbeat(Heartbeat.decode(value))


def handle(message: Message) -> None:
    """Route one message to its step; malformed messages are logged and skipped."""
    name = message.topic()
    try:
        if name == kafka.topic(kafka.RESULTS):
            record_result(message.value(), message.partition(), message.offset())
        elif name == kafka.topic(kafka.HEARTBEATS):
            record_heartbeat(message.value())
    except (MessageError, CodecError) as exc:
        logger.warning(
            "skipping malformed message %s[%s]@%s: %s", name, message.partition(), message.offset(), exc
        )


def run(should_stop: Callable[[], bool], poll_seconds: float = 1.0) -> None:
    consumer = kafka.consumer(kafka.COLLECTOR_GROUP)
    topics = [kafka.topic(kafka.RESULTS), kafka.topic(kafka.HEARTBEATS)]
    consumer.subscribe(topics)
    logger.info(
        "collector consuming %s from %s as group %s",
        ", ".join(topics),
        settings.KAFKA_BOOTSTRAP_SERVERS,
        kafka.group(kafka.COLLECTOR_GROUP),
    )
    resume_assemblies()
    try:
        while not should_stop():
            message = consumer.poll(poll_seconds)
            if message is None:
                close_old_connections()  # idle: drop a connection that is old or broken
                continue
            if message.error():
                logger.warning("kafka: %s", message.error())
                continue
            handle(message)
            consumer.store_offsets(message)
    finally:
        consumer.close()  # commits the offsets stored above
        logger.info("collector stopped")
