"""The dispatcher: queued tiles go to ``tasks`` as the workers have room, fairly between users;
and what requests leave for the pipeline to do: telling the workers of cancellations, assembling
a retried job whose tiles are all in. In its idle time it prunes what retention keeps no longer
(``retention.Pruner``).

Submitting a job only writes its rows. Here a tile is cut from its stage's input (``stages``) and
published, a bounded window at a time: as many tiles in flight as keep the live workers busy for
``DISPATCH_AHEAD_SECONDS`` at their recent pace (``scheduler.window``), handed out by
``scheduler.share``. A send has three parts, and only the middle one holds a transaction: the tiles
are cut and encoded; then claimed and marked sent, under a lock one dispatcher holds at a time
(so two dispatchers never send the same tile, and a pause or cancel that has answered sends no
more); then published. If the broker does not take them, their marks are undone and they wait
for the next step; a dispatcher killed after the claim leaves them marked, and the collector's
recovery queues them again after ``TILE_DEADLINE_SECONDS`` (at-least-once: a duplicate result is
a no-op).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Avg, Count, F, Min
from django.utils import timezone

from imagepipe.core.bands import pixel_array
from imagepipe.core.chain import needed_stat
from imagepipe.core.codec import array_parts
from imagepipe.core.operations import chain_halo
from imagepipe.core.pipeline import Pixels
from jobs.events import push_sent, push_status
from jobs.models import DISPATCH_LOCK, Job, PendingCancellation, Tile
from jobs.storage import StorageUnavailable

from . import assembly, kafka, retention, signing
from .loop import Loop
from .messages import Task
from .models import Worker
from .scheduler import Queue, share, window
from .stages import StageImages, StoredTiles

logger = logging.getLogger(__name__)
PACE_SECONDS = 5.0  # the recent past a tile's cost is measured over
PACE_SHORTEST = 0.5  # ... and the shortest: tiles recorded a few ms apart are no pace yet
REFILL_PART = 4  # a step waits until this part of the window is free (a quarter of a second ahead)
CANCELLATIONS_A_STEP = 100


class PublishError(Exception):
    """The broker did not take every tile of a send: its claim is released (``Claim.release``)."""


class Wakeups:
    """The database's word that tiles or jobs changed (a trigger NOTIFYs ``CHANNEL`` on commit),
    on a connection of its own: the dispatcher waits for it instead of polling the tables."""

    CHANNEL = "imagepipe_dispatch"  # the triggers' (migration 0009)

    def __init__(self, channel: str = CHANNEL) -> None:
        self.channel = channel
        self.listener: psycopg.Connection | None = None

    def wait(self, timeout: float) -> bool:
        """Until another connection than the dispatcher's own changed something, or ``timeout``
        seconds; whether one did. (Its own changes, marking tiles sent, would only wake it again.)"""
        own = connection.connection.info.backend_pid if connection.connection else None
        deadline = time.monotonic() + timeout
        try:
            if self.listener is None:
                self.listener = psycopg.connect(**connection.get_connection_params(), autocommit=True)
                self.listener.execute(f"LISTEN {self.channel}")
            while (left := deadline - time.monotonic()) > 0:
                if any(note.pid != own for note in self.listener.notifies(timeout=left, stop_after=1)):
                    return True
            return False
        except psycopg.Error as exc:  # the database away: the caller's next step says so
            logger.warning("waiting for changes failed (%s); looking again in %.1f s", exc, timeout)
            self.close()
            time.sleep(timeout)
            return False

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None


@dataclass
class Claim:
    """Tiles of one job marked sent at ``when`` with this send's nonce, each placed on a partition,
    not yet published."""

    job: Job
    when: datetime
    placed: dict[int, list[Tile]]

    @classmethod
    def take(cls, job: Job, indices: set[int], load: Counter, nonce: str) -> Claim | None:
        """Mark the tiles of ``indices`` still queued as sent with ``nonce``, each to the least
        loaded live partition, in one short transaction under ``DISPATCH_LOCK``; None if another
        dispatcher holds the lock, or the job is no longer dispatchable as it was when its tiles
        were chosen (their tasks are cut after, as they are published). From here, only a result
        carrying ``nonce`` is recorded for these tiles: one answering an earlier send of a tile,
        or no send at all, is refused."""
        with transaction.atomic():
            if not indices or not _lead():
                return None
            queued = job.tiles.queued(job.stage).filter(index__in=indices).select_for_update(skip_locked=True)
            tiles = list(queued.order_by("index").only("pk", "job", "index", "attempts"))
            # A pause or a cancel waits for the lock this holds (models._after_sends): once it has
            # answered, no more of the job is claimed. A retry since the cut changed the generation
            # its tasks carry.
            same = Job.objects.dispatchable().filter(pk=job.pk, stage=job.stage, generation=job.generation)
            if not tiles or not same.exists():
                return None
            placed: dict[int, list[Tile]] = defaultdict(list)
            for tile in tiles:
                partition = min(load, key=lambda p: load[p])  # the live partitions, least loaded first
                load[partition] += 1
                placed[partition].append(tile)
            now = timezone.now()
            for partition, group in placed.items():
                Tile.objects.filter(pk__in=[tile.pk for tile in group]).update(
                    state=Tile.State.SENT,
                    attempts=F("attempts") + 1,
                    dispatched_at=now,
                    partition=partition,
                    nonce=nonce,
                )
            if job.dispatched_at is None:
                job.mark_dispatched(now)
        return cls(job, now, placed)

    def tiles(self) -> list[Tile]:
        return [tile for tiles in self.placed.values() for tile in tiles]

    def release(self) -> None:
        """Queue the tiles again, as if never sent: the broker did not take them."""
        ids = [tile.pk for tile in self.tiles()]
        with transaction.atomic():
            self.job.tiles.in_flight().filter(pk__in=ids, dispatched_at=self.when).update(
                state=Tile.State.QUEUED, dispatched_at=None, attempts=F("attempts") - 1
            )
            Job.objects.filter(pk=self.job.pk, dispatched_at=self.when).update(dispatched_at=None)


class Dispatcher(Loop):
    name = "dispatcher"

    def __init__(self) -> None:
        super().__init__()
        self.wakeups = Wakeups()
        self.images = StageImages(settings.DISPATCH_CACHED_IMAGES)
        signing.require_keys(signing.TASK)
        self.producer = _producer()
        self.topic = kafka.topic(kafka.TASKS)
        self.pruner = retention.Pruner(busy=self.has_work)

    def start(self) -> None:
        logger.info("dispatcher sending to %s on %s", self.topic, settings.KAFKA_BOOTSTRAP_SERVERS)

    def idle(self) -> None:
        self.pruner.when_due()
        self.wakeups.wait(settings.DISPATCH_POLL_SECONDS)

    def has_work(self) -> bool:
        """Tiles to send or cancellations to tell: a pruning gives way to them."""
        return Tile.objects.queued().exists() or PendingCancellation.objects.exists()

    def stop(self) -> None:
        self.wakeups.close()
        self.producer.flush(10)

    def step(self) -> int:
        """Tell the workers of new cancellations, assemble retried jobs whose tiles are all in, then
        fill the window's free places once; the number of tiles sent."""
        self.tell_cancellations()
        for job in Job.objects.reopened_complete():
            assembly.assemble_job(job)
        sent = self.send_tiles()
        self.counters["tiles_sent"] += sent
        return sent

    def tell_cancellations(self) -> int:
        """Publish the cancellations requests left (``PendingCancellation``), oldest first, to the
        compacted ``cancellations`` topic, and forget those the broker took; the rest wait for the
        next step. The value is the job's generation: a retry sends its tiles with a higher one,
        which this cancellation does not cover, so a job can be cancelled and retried any number
        of times."""
        pending = list(PendingCancellation.objects.order_by("id")[:CANCELLATIONS_A_STEP])
        if not pending:
            return 0
        told: list[int] = []
        for notice in pending:
            value, key = str(notice.generation).encode(), str(notice.job_id)

            def delivered(err, msg, pk=notice.pk) -> None:
                if err is None:
                    told.append(pk)

            topic = kafka.topic(kafka.CANCELLATIONS)
            _produce(self.producer, topic, value, key, None, delivered, signing.CANCELLATION)
        self.producer.flush(10)
        PendingCancellation.objects.filter(pk__in=told).delete()
        if len(told) < len(pending):
            logger.warning("%d cancellations not yet taken by the broker", len(pending) - len(told))
        self.counters["cancellations_told"] += len(told)
        return len(told)

    def send_tiles(self) -> int:
        """Fill the window's free places once; the number of tiles sent.

        The counts are read outside any transaction, each from one table (see ``jobs.models`` on
        the order tables are locked in); only each job's claim holds a transaction.
        """
        if not Tile.objects.queued().exists():
            self.images.keep_only(set())  # idle: nothing held, and one query a look
            return 0
        live, online = self.live_partitions()
        # Tiles waiting on a partition no live worker holds (a worker that died with them) hold
        # no place: the broker hands them to another worker, or recovery queues them again.
        flying: Counter = Counter()  # tiles in flight per job, and (below) per partition
        load = Counter({partition: 0 for partition in live})
        for job_id, partition, count in (
            Tile.objects.in_flight().filter(partition__in=live).count_by("job", "partition")
        ):
            flying[job_id] += count
            load[partition] += count
        per_worker, least = settings.DISPATCH_TILES_PER_WORKER, settings.DISPATCH_WINDOW_MIN
        size = window(
            online, per_worker, least, self.recent_tile_seconds(online), settings.DISPATCH_AHEAD_SECONDS
        )
        free = size - sum(flying.values())
        if free < max(1, size // REFILL_PART):
            return 0  # a step costs queries and a flush: refill by the part, not tile by tile
        queued = Tile.objects.queued().count_by("job", "stage")
        waiting = {(str(job), stage): count for job, stage, count in queued}
        jobs = {
            str(job.pk): job
            for job in Job.objects.dispatchable().filter(pk__in={job for job, _ in waiting})
            if (str(job.pk), job.stage) in waiting
        }
        self.images.keep_only({(job_id, job.stage) for job_id, job in jobs.items()})
        if not jobs:
            return 0
        order = sorted(jobs.values(), key=lambda job: (-job.priority, job.created_at))
        in_memory = self.images.fitting([(str(job.pk), job.stage) for job in order])
        owners = dict(Job.objects.filter(pk__in=list(flying)).values_list("pk", "owner_id"))
        by_owner: Counter[int] = Counter()
        for job_id, count in flying.items():
            by_owner[owners.get(job_id, 0)] += count
        queues = [
            Queue(
                key,
                job.owner_id,
                job.priority,
                job.created_at,
                waiting[key, job.stage],
                flying.get(job.pk, 0),
                (key, job.stage) in in_memory,
            )
            for key, job in jobs.items()
        ]
        return sum(
            self.send(jobs[job_id], count, load) for job_id, count in share(queues, free, by_owner).items()
        )

    def send(self, job: Job, count: int, load: Counter) -> int:
        """Cut ``count`` of the job's queued tiles, claim them, publish them to the least loaded
        partitions; the number sent."""
        try:
            source, table = self.images.get(job)
        except StorageUnavailable:
            raise  # storage away, not the job: the loop waits it out and sends the tiles then
        except Exception as exc:
            logger.exception("preparing stage %d of job %s failed", job.stage, job.pk)
            return self.stage_failed(job, exc)
        count = min(count, tiles_a_send(job))
        indices = set(job.tiles.queued(job.stage).order_by("index").values_list("index", flat=True)[:count])
        nonce = secrets.token_hex(16)
        claim = Claim.take(job, indices, load, nonce)
        if claim is None:
            return 0
        claimed = {tile.index for tile in claim.tiles()}
        try:
            self.publish(job, task_messages(job, source, job.stage, table, claimed, nonce), claim)
        except (OSError, ValueError) as exc:  # an original read in bands fails part way down
            claim.release()
            logger.warning("job %s: cutting stage %d failed: %s", job.pk, job.stage, exc)
            return self.stage_failed(job, exc)
        except BaseException:  # the broker did not take them, or storage is away: sent again later
            claim.release()
            raise
        push_sent(job, [(tile.index, tile.attempts + 1) for tile in claim.tiles()])
        return len(claim.tiles())

    def stage_failed(self, job: Job, exc: Exception) -> int:
        """Fail the job whose stage could not be read or cut; no tile sent."""
        if job.fail(f"preparing stage {job.stage} failed: {exc}"):
            push_status(job)
        return 0

    def publish(self, job: Job, messages: Iterable[tuple[int, bytes]], claim: Claim) -> None:
        """Each claimed tile's task to the partition it was placed on, as it is cut: the producer
        copies it (``_produce`` polls after each), so the tasks held are those the broker has not
        yet taken, not the whole send; PublishError unless all are taken."""
        errors: list[str] = []

        def delivered(err, msg) -> None:
            if err is not None:
                errors.append(str(err))

        partition_of = {tile.index: partition for partition, tiles in claim.placed.items() for tile in tiles}
        for index, value in messages:
            key = f"{job.pk}:{job.stage}:{index}"
            _produce(self.producer, self.topic, value, key, partition_of[index], delivered, signing.TASK)
        if self.producer.flush(30) or errors:
            reason = (errors or ["timed out"])[0]
            raise PublishError(f"job {job.pk}: the broker did not take its tiles: {reason}")

    def recent_tile_seconds(self, online: int) -> float:
        """What a tile has lately taken a worker, all told (over the last ``PACE_SECONDS``): the
        larger of what the workers report for the work itself, known from the first tile on, and
        what the pace of recorded tiles says, which also counts each tile's trip and recording (most
        of a small tile's cost); 0 if no tile was recorded."""
        now = timezone.now()
        recent = Tile.objects.filter(finished_at__gte=now - timedelta(seconds=PACE_SECONDS)).aggregate(
            count=Count("pk"), first=Min("finished_at"), ms=Avg("duration_ms")
        )
        if not recent["count"]:
            return 0.0
        span = max((now - recent["first"]).total_seconds(), PACE_SHORTEST)
        paced = span * max(online, 1) / recent["count"]
        return max((recent["ms"] or 0) / 1000, paced, 0.001)

    def live_partitions(self) -> tuple[list[int], int]:
        """The ``tasks`` partitions online workers hold (all while none has said), and how many
        workers are online."""
        online = list(Worker.objects.online().values_list("partitions", flat=True))
        everything = range(task_partitions(self.topic))
        held = {p for partitions in online for p in partitions if p in everything}
        return sorted(held) or list(everything), len(online)


def tiles_a_send(job: Job) -> int:
    """How many of the job's tiles one send may cut: their tasks are held until the broker has them,
    so together they take at most a quarter of ``DISPATCH_MEMORY_MB`` (the rest of the window is
    sent in the steps that follow)."""
    halo = chain_halo(job.stages[job.stage])
    largest = (job.tile_size + 2 * halo) ** 2 * 4  # RGBA at most
    return max(1, (settings.DISPATCH_MEMORY_MB << 20) // 4 // largest)


def _lead() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [DISPATCH_LOCK])
        return bool(cursor.fetchone()[0])


@cache
def _producer():
    # Tasks the broker has not yet taken, held at most (librdkafka's default is 1 GB): room for the
    # largest message; a send past it waits for deliveries (_produce), however fast tiles are cut.
    return kafka.producer(**{"queue.buffering.max.kbytes": (settings.KAFKA_MAX_MESSAGE_BYTES >> 10) + 1024})


@cache
def task_partitions(topic_name: str) -> int:
    metadata = _producer().list_topics(topic_name, timeout=10)
    found = metadata.topics.get(topic_name)
    if found is None or found.error is not None or not found.partitions:
        task_partitions.cache_clear()
        raise RuntimeError(f"topic {topic_name} is missing: run manage.py kafka_topics")
    return len(found.partitions)


def task_messages(
    job: Job,
    source: Pixels | StoredTiles,
    stage: int,
    table=None,
    only: set[int] | None = None,
    nonce: str = "",
) -> Iterator[tuple[int, bytes]]:
    """Each tile of a stage (``only`` those indices) as a task: padded pixels, place, the steps,
    and the send's nonce."""
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
            size=list(job.stage_size(stage)),
            operations=operations,
            stage=stage,
            table=table,
            stat=stat,
            generation=job.generation,
            nonce=nonce,
            source=list(spec.source.as_tuple()) if spec.source else [],
        )
        if isinstance(source, StoredTiles):
            yield spec.index, task.encode(source.pixels(spec.index))
        else:  # the padded region (or window), straight from the rows read, copied once into its message
            yield (
                spec.index,
                task.encode(array_parts(source.mode, pixel_array(source, spec.read.as_tuple()))),
            )


def _produce(producer, topic_name, value, key, partition: int | None, on_delivery, kind: str) -> None:
    """Produce one message of ``kind``, signed (to ``partition``, or where the key hashes),
    waiting for room."""
    placement = {} if partition is None else {"partition": partition}
    headers = signing.sign(kind, key, value)
    while True:
        try:
            producer.produce(
                topic_name, value, key=key, on_delivery=on_delivery, headers=headers, **placement
            )
            producer.poll(0)
            return
        except BufferError:  # local queue full: let deliveries drain, then retry
            producer.poll(0.5)
