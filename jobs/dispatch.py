"""Sending work to the workers: a stage's tiles to ``tasks``, a cancellation to ``cancellations``.

A stage is cut from the stored original (stage 0) or from the previous stage's stored tiles,
so any process can dispatch any stage at any time: the submitting request, the collector when
a stage completes, recovery when tiles stopped moving, a retry.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterator
from functools import cache

from django.db.models import F
from django.utils import timezone
from PIL import Image

from imagepipe import kafka
from imagepipe.core.chain import needed_stat
from imagepipe.core.codec import encode_tile
from imagepipe.core.messages import Task
from imagepipe.core.pipeline import cut_tile, leading_table
from imagepipe.core.tiling import TileSpec

from . import assembly
from .events import push_status
from .models import Job
from .uploads import open_image

logger = logging.getLogger(__name__)


def advance_stage(job: Job, finished: int) -> None:
    """Dispatch the next stage once ``finished`` is complete (only one caller wins)."""
    if not job.claim_next_stage(finished):
        return
    dispatch_stage(job, finished + 1)


def stage_finished(job: Job, stage: int) -> bool:
    """Every tile of ``stage`` is in and a later stage waits for them."""
    return stage < job.last_stage and not job.tiles.pending(stage).exists()


def stage_input(job: Job, stage: int) -> tuple[Image.Image, list[int] | None]:
    """What a stage's tiles are cut from: the stored original for stage 0, else the previous stage."""
    if stage:
        return assembly.next_stage_input(job, stage - 1)
    with job.original.open("rb") as original:
        image, _ = open_image(original)
    return image, leading_table(job.stages[0], image)


def dispatch_stage(job: Job, stage: int, only: set[int] | None = None) -> None:
    """Publish a stage's tiles (``only`` those indices, if given); a stage that can't be cut fails the job."""
    try:
        image, table = stage_input(job, stage)
    except Exception as exc:
        logger.exception("preparing stage %d of job %s failed", stage, job.pk)
        job.fail(f"preparing stage {stage} failed: {exc}")
        push_status(job)
        return
    publish_stage(job, image, stage, table, only)
    logger.info("job %s: stage %d of %d dispatched", job.pk, stage, job.last_stage)


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
    job: Job, image: Image.Image, stage: int, table: list[int] | None = None, only: set[int] | None = None
) -> Iterator[tuple[TileSpec, bytes]]:
    """Each tile of a stage as a task: its padded pixels, where it belongs, the stage's steps."""
    operations = [step.to_dict() for step in job.stages[stage]]
    stat = needed_stat(job.stages, stage)
    for spec in job.stage_tiles(stage):
        if only is not None and spec.index not in only:
            continue
        task = Task(
            job=str(job.id),
            index=spec.index,
            core=list(spec.core.as_tuple()),
            padded=list(spec.padded.as_tuple()),
            size=list(image.size),
            operations=operations,
            stage=stage,
            table=table,
            stat=stat,
            generation=job.generation,
        )
        yield spec, task.encode(encode_tile(cut_tile(image, spec)))


def publish_stage(
    job: Job, image: Image.Image, stage: int, table: list[int] | None = None, only: set[int] | None = None
) -> None:
    """Send every tile of a stage (core + halo) to Kafka; fail the job if the broker won't take them.

    ``image`` is what the stage works on: the upload for stage 0, the previous
    stage's assembled output after that.  ``only`` limits it to those tile indices (a retry).
    """
    producer = _producer()
    name = kafka.topic(kafka.TASKS)
    errors: list[str] = []

    def delivered(err, msg):
        if err is not None:
            errors.append(str(err))

    count = 0
    try:
        partitions = task_partitions(name)
        for spec, value in task_messages(job, image, stage, table, only):
            _produce(
                producer,
                name,
                value,
                f"{job.id}:{stage}:{spec.index}",
                spread(job.id, spec.index, partitions),
                delivered,
            )
            count += 1
        remaining = producer.flush(60)
    except Exception as exc:  # the broker, not the user: record it on the job
        logger.exception("publishing job %s failed", job.id)
        errors.append(str(exc))
        remaining = 0
    if errors or remaining:
        job.fail(f"could not publish tiles to Kafka: {(errors or ['timed out'])[0]}")
        return
    sent = job.tiles.filter(stage=stage, **({"index__in": only} if only is not None else {}))
    sent.update(attempts=F("attempts") + 1, dispatched_at=timezone.now())
    if stage == 0:
        job.mark_dispatched()
    logger.info("job %s: published %d tiles of stage %d over %d partitions", job.id, count, stage, partitions)


def _produce(producer, topic_name, value, key, partition, on_delivery) -> None:
    while True:
        try:
            producer.produce(topic_name, value, key=key, partition=partition, on_delivery=on_delivery)
            producer.poll(0)
            return
        except BufferError:  # local queue full: let deliveries drain, then retry
            producer.poll(0.5)


def announce_cancel(job: Job) -> None:
    """Tell every worker to drop the job's remaining tiles (best effort: late results are ignored).

    The value is the job's generation: a retry sends its tiles with a higher one, which this
    cancellation does not cover, so a job can be cancelled and retried any number of times.
    """
    producer = _producer()
    producer.produce(kafka.topic(kafka.CANCELLATIONS), str(job.generation).encode(), key=str(job.id))
    if producer.flush(5):
        logger.warning("cancellation of job %s not yet delivered to Kafka", job.id)
