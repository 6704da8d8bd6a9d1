"""The dispatcher: queued tiles go to ``tasks`` as the workers have room, fairly between users.

Submitting a job only writes its rows. Here a tile is cut from the stored original (stage 0) or
from the previous stage's stored tiles (later stages) and published, a bounded window at a time:
as many tiles in flight as keep the live workers busy for ``DISPATCH_AHEAD_SECONDS`` at their
recent pace (``scheduler.window``), handed out by ``scheduler.share``. A tile is claimed,
published and marked in one transaction, under a lock only one dispatcher holds at a time: a
dispatcher killed mid-step leaves its tiles queued (sent again: at-least-once), and two
dispatchers never send the same tile.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import cache

import psycopg
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import (
    InterfaceError,
    OperationalError,
    connection,
    connections,
    transaction,
)
from django.db.models import Avg, Count, F, Min
from django.utils import timezone
from PIL import Image

from imagepipe import kafka
from imagepipe.core.chain import needed_stat
from imagepipe.core.codec import encode_tile
from imagepipe.core.messages import Task
from imagepipe.core.operations import chain_halo
from imagepipe.core.pipeline import cut_tile, leading_table
from imagepipe.core.tiling import TileSpec
from workers.models import Worker

from . import assembly
from .events import push_sent, push_status
from .models import DISPATCH_LOCK, Job, Tile
from .scheduler import Queue, share, window
from .uploads import open_image

logger = logging.getLogger(__name__)
PACE_SECONDS = 5.0  # the recent past a tile's cost is measured over
PACE_SHORTEST = 0.5  # ... and the shortest: tiles recorded a few ms apart are no pace yet
REFILL_PART = 4  # a step waits until this part of the window is free (a quarter of a second ahead)


class PublishError(Exception):
    """The broker did not take every tile of a step: nothing of it is marked sent."""


def advance_stage(job: Job, finished: int) -> None:
    """Move the job to its next stage once ``finished`` is complete (only one caller wins);
    the dispatcher then sends the next stage's tiles."""
    if job.claim_next_stage(finished):
        logger.info("job %s: stage %d of %d queued", job.pk, finished + 1, job.last_stage)
        job.refresh_from_db(fields=["stage", "status", "tiles_done"])
        push_status(job)  # the job's page turns to the new stage's tiles


def stage_finished(job: Job, stage: int) -> bool:
    """Every tile of ``stage`` is in and a later stage waits for them."""
    return stage < job.last_stage and not job.tiles.pending(stage).exists()


class StoredTiles:
    """A stage's input left as the stage before stored it, tile for tile: when the stage needs no
    halo and nothing moved its tiles, each of its tiles is one the stage before returned, already
    in the tile codec, so nothing is rebuilt, cut or encoded (a statistics chain's last stage)."""

    def __init__(self, names: dict[int, str]) -> None:
        self.names = names  # this stage's tile index -> the stored result it is

    def pixels(self, index: int) -> bytes:
        with default_storage.open(self.names[index], "rb") as handle:
            return handle.read()


StageInput = tuple[Image.Image | StoredTiles, list[int] | None]


def stage_input(job: Job, stage: int) -> StageInput:
    """What a stage's tiles are cut from: the stored original for stage 0, else the previous stage
    (its stored tiles as they are, if they are this stage's tiles)."""
    started = time.perf_counter()
    found: StageInput
    if stage and (stored := stored_tiles(job, stage)):
        found, how = (stored, assembly.next_stage_table(job, stage - 1)), "is the stored tiles before it"
    elif stage:
        found, how = assembly.next_stage_input(job, stage - 1), "rebuilt from the tiles before it"
    else:
        with job.original.open("rb") as original:
            image, _ = open_image(original)
        found, how = (image, leading_table(job.stages[0], image)), "decoded from the original"
    logger.info("job %s stage %d input %s in %.2f s", job.pk, stage, how, time.perf_counter() - started)
    return found


def stored_tiles(job: Job, stage: int) -> StoredTiles | None:
    """The stage's tiles as the stage before stored them, if each is exactly one of those: the
    stage reads no halo and every one of its tiles is where a tile before landed."""
    if chain_halo(job.stages[stage]):
        return None
    before = job.tiles.filter(stage=stage - 1).only("stage", "x", "y", "width", "height", "result")
    landed = {job.placed_box(tile): tile.result.name for tile in before}
    names = {}
    for spec in job.stage_tiles(stage):
        if spec.core not in landed:
            return None
        names[spec.index] = landed[spec.core]
    return StoredTiles(names)


class StageImages:
    """The last few stage inputs used, decoded: the bound on the dispatcher's memory.

    Jobs take turns in the window, so each keeps its decoded input here while it is sent;
    past ``size`` inputs the least recently used is dropped and read again from storage.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: OrderedDict[tuple[str, int], StageInput] = OrderedDict()

    def keep_only(self, wanted: set[tuple[str, int]]) -> None:
        """Drop the inputs no dispatchable job needs any more (finished, cancelled, paused, moved on)."""
        for key in [key for key in self.images if key not in wanted]:
            del self.images[key]

    def fitting(self, keys: list[tuple[str, int]]) -> set[tuple[str, int]]:
        """Of ``keys`` (in scheduling order), those held or with room to be: the rest would evict."""
        room = self.size - sum(key in self.images for key in keys)
        fresh = [key for key in keys if key not in self.images][: max(room, 0)]
        return {key for key in keys if key in self.images} | set(fresh)

    def get(self, job: Job) -> StageInput:
        key = (str(job.pk), job.stage)
        if key in self.images:
            self.images.move_to_end(key)
            return self.images[key]
        found = self.images[key] = stage_input(job, job.stage)
        while len(self.images) > self.size:
            self.images.popitem(last=False)
        return found


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


class Dispatcher:
    def __init__(self) -> None:
        self.wakeups = Wakeups()
        self.images = StageImages(settings.DISPATCH_CACHED_IMAGES)
        self.producer = _producer()
        self.topic = kafka.topic(kafka.TASKS)
        self.sent = 0

    def run(self, should_stop: Callable[[], bool]) -> None:
        """Send tiles until asked to stop; a failure is logged and the next step tries again later."""
        logger.info("dispatcher sending to %s on %s", self.topic, settings.KAFKA_BOOTSTRAP_SERVERS)
        backoff = 0.0
        while not should_stop():
            try:
                sent, backoff = self.step(), 0.0
            except (OperationalError, InterfaceError) as exc:
                sent, backoff = 0, _longer(backoff)
                logger.warning("database unavailable (%s); retrying in %.1f s", str(exc).strip(), backoff)
                connections.close_all()
            except Exception:  # the broker away, or a bug: never the end of the dispatcher
                sent, backoff = 0, _longer(backoff)
                logger.exception("dispatching failed; retrying in %.1f s", backoff)
            if backoff:
                time.sleep(backoff)
            elif not sent:
                self.wakeups.wait(settings.DISPATCH_POLL_SECONDS)
        self.wakeups.close()
        logger.info("dispatcher stopped; %d tiles sent", self.sent)

    def step(self) -> int:
        """Fill the window's free places once; the number of tiles sent.

        The counts are read outside any transaction, each from one table (a join would take the
        tables' locks one after the other); only the claim of a job's tiles, their publishing
        and their marking hold a transaction, on the tile rows alone, under the lock.
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
        sent = sum(
            self.send(jobs[job_id], count, load) for job_id, count in share(queues, free, by_owner).items()
        )
        self.sent += sent
        return sent

    def send(self, job: Job, count: int, load: Counter) -> int:
        """Publish ``count`` of the job's queued tiles to the least loaded partitions, then mark them."""
        try:
            source, table = self.images.get(job)
        except Exception as exc:
            logger.exception("preparing stage %d of job %s failed", job.stage, job.pk)
            if job.fail(f"preparing stage {job.stage} failed: {exc}"):
                push_status(job)
            return 0
        with transaction.atomic():
            if not _lead():
                return 0  # another dispatcher is sending right now
            queued = job.tiles.queued(job.stage).select_for_update(skip_locked=True).order_by("index")
            claimed = list(queued.only("pk", "index", "attempts")[:count])
            tiles = {tile.index: tile.pk for tile in claimed}
            # Still dispatchable? A pause or a cancel waits for the lock this step holds (models.
            # _after_sends), so once it has answered, nothing more of the job goes out. (Asked
            # after the tiles: tables are taken in the order the collector and a flush take them.)
            if not Job.objects.dispatchable().filter(pk=job.pk).exists():
                return 0
            placed = self.publish(job, source, table, tiles, load)
            now = timezone.now()
            for partition, ids in placed.items():
                Tile.objects.filter(pk__in=ids).update(
                    attempts=F("attempts") + 1, dispatched_at=now, partition=partition
                )
            if tiles and job.dispatched_at is None:
                job.mark_dispatched(now)
        if tiles:  # each sent once more than it had been when claimed
            push_sent(job, [(tile.index, tile.attempts + 1) for tile in claimed])
        return len(tiles)

    def publish(self, job, source, table, tiles: dict[int, int], load: Counter) -> dict[int, list[int]]:
        """Each tile to the partition with the fewest in flight; raises PublishError unless all are taken."""
        placed: dict[int, list[int]] = defaultdict(list)
        errors: list[str] = []

        def delivered(err, msg) -> None:
            if err is not None:
                errors.append(str(err))

        for spec, value in task_messages(job, source, job.stage, table, set(tiles)):
            partition = min(load, key=lambda p: load[p])  # the live partitions, least loaded first
            load[partition] += 1
            key = f"{job.pk}:{job.stage}:{spec.index}"
            _produce(self.producer, self.topic, value, key, partition, delivered)
            placed[partition].append(tiles[spec.index])
        if self.producer.flush(30) or errors:
            reason = (errors or ["timed out"])[0]
            raise PublishError(f"job {job.pk}: the broker did not take its tiles: {reason}")
        return placed

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


def _longer(backoff: float) -> float:
    return min(max(0.5, backoff * 2), 5.0)


def _lead() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [DISPATCH_LOCK])
        return bool(cursor.fetchone()[0])


@cache
def _producer():
    return kafka.producer()


@cache
def task_partitions(topic_name: str) -> int:
    metadata = _producer().list_topics(topic_name, timeout=10)
    found = metadata.topics.get(topic_name)
    if found is None or found.error is not None or not found.partitions:
        task_partitions.cache_clear()
        raise RuntimeError(f"topic {topic_name} is missing: run manage.py kafka_topics")
    return len(found.partitions)


def task_messages(
    job: Job, source: Image.Image | StoredTiles, stage: int, table=None, only: set[int] | None = None
) -> Iterator[tuple[TileSpec, bytes]]:
    """Each tile of a stage (``only`` those indices) as a task: padded pixels, place, the steps."""
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
        )
        if isinstance(source, StoredTiles):
            yield spec, task.encode(source.pixels(spec.index))
        else:
            yield spec, task.encode(encode_tile(cut_tile(source, spec)))


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
