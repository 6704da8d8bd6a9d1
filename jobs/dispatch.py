"""Publishing a job's tiles to the ``tasks`` topic."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterator, Sequence
from functools import cache

from django.db.models import F
from django.utils import timezone
from PIL import Image

from imagepipe import kafka
from imagepipe.core.codec import encode_tile
from imagepipe.core.messages import Task
from imagepipe.core.pipeline import cut_tile
from imagepipe.core.tiling import TileSpec

from .models import Job

logger = logging.getLogger(__name__)


@cache
def _producer():
    return kafka.producer()


def task_partitions(topic_name: str) -> int:
    metadata = _producer().list_topics(topic_name, timeout=10)
    found = metadata.topics.get(topic_name)
    if found is None or found.error is not None or not found.partitions:
        raise RuntimeError(f"topic {topic_name} is missing: run manage.py kafka_topics")
    return len(found.partitions)


def spread(job_id, index: int, partitions: int) -> int:
    """Round-robin a job's tiles over every partition, starting at a per-job offset.

    Hashing ``job:tile`` keys only spreads them on average; round-robin guarantees
    every worker of the group gets a share of every job with enough tiles.
    """
    return (zlib.crc32(str(job_id).encode()) + index) % partitions


def task_messages(
    job: Job, image: Image.Image, specs: Sequence[TileSpec]
) -> Iterator[tuple[TileSpec, bytes]]:
    """Each tile's task message: its padded pixels, where it belongs, the chain."""
    for spec in specs:
        task = Task(
            job=str(job.id),
            index=spec.index,
            core=list(spec.core.as_tuple()),
            padded=list(spec.padded.as_tuple()),
            size=[job.width, job.height],
            operations=job.operations,
        )
        yield spec, task.encode(encode_tile(cut_tile(image, spec)))


def publish_tiles(job: Job, image: Image.Image, specs: Sequence[TileSpec]) -> None:
    """Send every tile (core + halo) to Kafka; fail the job if the broker won't take them."""
    producer = _producer()
    name = kafka.topic(kafka.TASKS)
    errors: list[str] = []

    def delivered(err, msg):
        if err is not None:
            errors.append(str(err))

    try:
        partitions = task_partitions(name)
        for spec, value in task_messages(job, image, specs):
            _produce(
                producer,
                name,
                value,
                f"{job.id}:{spec.index}",
                spread(job.id, spec.index, partitions),
                delivered,
            )
        remaining = producer.flush(60)
    except Exception as exc:  # the broker, not the user: record it on the job
        logger.exception("publishing job %s failed", job.id)
        errors.append(str(exc))
        remaining = 0
    if errors or remaining:
        job.fail(f"could not publish tiles to Kafka: {(errors or ['timed out'])[0]}")
        return
    now = timezone.now()
    job.tiles.update(attempts=F("attempts") + 1, dispatched_at=now)
    job.mark_dispatched()
    logger.info("job %s: published %d tiles over %d partitions", job.id, len(specs), partitions)


def _produce(producer, topic_name, value, key, partition, on_delivery) -> None:
    while True:
        try:
            producer.produce(topic_name, value, key=key, partition=partition, on_delivery=on_delivery)
            producer.poll(0)
            return
        except BufferError:  # local queue full: let deliveries drain, then retry
            producer.poll(0.5)
