"""The result collector: one step function per message kind, and the loop around them.

Each result is made durable (tile file, then the Tile row in one transaction) before its offset
is stored, and a duplicate result is a no-op, so the collector can be killed at any point and
resume without losing or double-counting a tile. The database or storage away (``OUTAGES``) is
waited out, the batch in hand tried again until it is durable; nothing is skipped for it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from functools import cache, partial

import numpy as np
from confluent_kafka import KafkaException, Message, Producer
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

from imagepipe.core.codec import CodecError, decode_array
from jobs import storage
from jobs.events import push, push_all, push_status
from jobs.models import Job, Tile, Total
from jobs.sweep import Sweep

from . import kafka, signing
from .canvas import CANVASES
from .loop import Loop, longer
from .messages import Heartbeat, MessageError, Result
from .models import Collector, Worker
from .pyramids import Builder
from .recovery import recover, resume
from .stages import move_on
from .watchdog import WatchedConsumer

logger = logging.getLogger(__name__)
# recorded, tiles_failed, duplicates, late, malformed, failed (not handled), ignored, and the
# refused: unsigned (no valid signature) and stale_nonce (not the answer to the tile's last send)
COUNTS: Counter[str] = Counter()
UNSIGNED, STALE_NONCE = "unsigned", "stale_nonce"
REFUSALS = (UNSIGNED, STALE_NONCE)  # what a collector refuses, as COUNTS and /metrics name it
# What the collector fills in when a worker reports a tile failed.
FAILURE_RECORDED = ["state", "error", "worker", "partition", "offset", "duration_ms", "finished_at"]
# What no message is to blame for: the collector waits these out (``durably``), never skipping.
OUTAGES = (OperationalError, InterfaceError, storage.StorageUnavailable)


class Refused(list[tuple[Result, str]]):
    """Results a batch did not record because they answer no task sent, each with why."""

    def add(self, result: Result, reason: str) -> None:
        COUNTS[STALE_NONCE] += 1
        logger.warning("refusing the result of tile %s of job %s: %s", result.index, result.job, reason)
        self.append((result, reason))


def answers_last_send(result: Result, tile: Tile) -> bool:
    """Does the result carry the nonce of the tile's last send? (A tile never sent has none.)"""
    return bool(tile.nonce) and result.nonce == tile.nonce


def record_result(value: bytes) -> Refused:
    """One result on its own (a batch of one): what a batch's fallback calls."""
    return record_results([Result.decode(value)])


def record_results(results: list[tuple[Result, bytes]]) -> Refused:
    """Record a batch of decoded results: a few queries for the whole batch, not a few per tile;
    those refused, for the caller to dead-letter.

    Each tile's pixels are stored before any row says so, and a tile is claimed only while still
    pending, all in one transaction: replaying a batch (after a crash, or when the database
    failed halfway) stores the same files again and counts nothing twice. A result is recorded
    only if it answers the tile's last send (its nonce): a result for an earlier send, for
    another job's tile, or for none at all is refused. The same result again (a redelivery) is a
    duplicate: counted, not recorded, not refused.
    """
    refused = Refused()
    jobs = {
        str(job.pk): job
        for job in Job.objects.defer("icc_profile").filter(pk__in={r.job for r, _ in results})
    }
    # Failures first: a job they fail takes none of the batch's other tiles (it is late for them).
    _record_failures(
        [(result, jobs[result.job]) for result, _ in results if result.error and _unfinished(result, jobs)],
        refused,
    )
    arrived: list[tuple[Result, bytes, Job]] = []
    for result, pixels in results:
        if not result.error and _unfinished(result, jobs):
            arrived.append((result, pixels, jobs[result.job]))
    images: dict[int, np.ndarray] = {}
    claims = _store_new_tiles(arrived, images, refused)
    if not claims:
        return refused
    with transaction.atomic():
        pending = set(
            Tile.objects.pending()
            .filter(pk__in=list(claims))
            .select_for_update()
            .values_list("pk", flat=True)
        )
        recorded = [claims[pk] for pk in pending]
        Tile.objects.record_finished(recorded)
        done = Counter(str(tile.job_id) for tile in recorded)
        stored: Counter[str] = Counter()
        for tile in recorded:
            stored[str(tile.job_id)] += tile.result_size
        for job_id, count in done.items():
            jobs[job_id].record_tiles_done(count, stored[job_id])
        Total.count_tiles([tile.duration_ms for tile in recorded])
    COUNTS["recorded"] += len(pending)
    COUNTS["duplicates"] += len(claims) - len(pending)
    for job_id, count in done.items():
        job, tiles = jobs[job_id], [claims[pk] for pk in pending if str(claims[pk].job_id) == job_id]
        CANVASES.paste(job, [(tile, images[tile.pk]) for tile in tiles], job.tiles_done - count)
        _announce(job, tiles, count)
    return refused


def _unfinished(result: Result, jobs: dict[str, Job]) -> bool:
    """Is the result's job known and not ended? If not, the result is counted and ignored."""
    job = jobs.get(result.job)
    if job is not None and job.status not in Job.TERMINAL:
        return True
    COUNTS["late" if job else "ignored"] += 1  # late: for a job already finished
    logger.info(
        "ignoring result for tile %s of %s job %s", result.index, job.status if job else "unknown", result.job
    )
    return False


def _record_failures(failures: list[tuple[Result, Job]], refused: Refused) -> None:
    """Record each tile a worker gave up on as failed, with its reason, and fail its job.

    Only a tile still pending is claimed, in the same transaction as its job's failure: a
    replayed failure finds its job ended (or its tile done) and changes nothing, and a failure
    for a tile done meanwhile (a recovered tile's other copy) neither touches it nor fails the job.
    """
    if not failures:
        return
    now = timezone.now()
    with transaction.atomic():
        pending = {
            (str(tile.job_id), tile.stage, tile.index): tile
            for tile in Tile.objects.pending()
            .filter(job__in={job.pk for _, job in failures}, index__in={r.index for r, _ in failures})
            .select_for_update()
        }
        failed: list[Tile] = []
        for result, job in failures:
            key = (result.job, result.stage, result.index)
            if key in pending and not answers_last_send(result, pending[key]):
                refused.add(result, "its nonce is not that of the tile's last send")
                continue
            tile = pending.pop(key, None)
            if tile is None:
                COUNTS["duplicates"] += 1  # done already, failed twice in the batch, or unknown
                continue
            tile.job, tile.state, tile.error, tile.finished_at = job, Tile.State.FAILED, result.error, now
            tile.worker, tile.duration_ms = result.worker, result.duration_ms
            tile.partition, tile.offset = result.task_partition, result.task_offset
            failed.append(tile)
        Tile.objects.bulk_update(failed, FAILURE_RECORDED)
        first = {str(tile.job_id): tile for tile in reversed(failed)}  # each job's first failed tile
        ended = [tile.job for tile in first.values() if tile.job.fail(_failure_message(tile))]
    COUNTS["tiles_failed"] += len(failed)
    for tile in failed:
        push(tile.job, tile.event())  # before the status: the page paints the tile, then the job
    for job in ended:
        push_status(job)


def _failure_message(tile: Tile) -> str:
    return f"tile {tile.index} failed on {tile.worker}: {tile.error}"


def _store_new_tiles(
    arrived: list[tuple[Result, bytes, Job]], images: dict[int, np.ndarray], refused: Refused
) -> dict[int, Tile]:
    """Store the pixels of every result whose tile is still pending; its row, filled in but not
    saved, by id (and its pixels, as an array, in ``images``). A tile that is unknown, done already, or
    twice in the batch is counted and skipped; one whose pixels are wrong is counted as malformed
    and skipped alone."""
    wanted = {(str(job.pk), result.stage, result.index) for result, _, job in arrived}
    tiles = {
        (str(tile.job_id), tile.stage, tile.index): tile
        for tile in Tile.objects.filter(
            job__in={job.pk for _, _, job in arrived}, index__in={index for _, _, index in wanted}
        )
        if (str(tile.job_id), tile.stage, tile.index) in wanted
    }
    claims: dict[int, Tile] = {}
    now = timezone.now()
    for result, pixels, job in arrived:
        tile = tiles.get((result.job, result.stage, result.index))
        if tile is not None and not answers_last_send(result, tile):
            refused.add(result, "its nonce is not that of the tile's last send")
            continue
        if tile is None or tile.state == Tile.State.DONE or tile.pk in claims:
            COUNTS["duplicates" if tile else "ignored"] += 1
            continue  # a redelivered result, or an unknown tile: nothing changes
        try:
            images[tile.pk] = _check_tile(job, tile, pixels)
        except MessageError as exc:
            COUNTS["malformed"] += 1
            logger.warning("skipping the result of tile %s of job %s: %s", tile.index, job.pk, exc)
            continue
        tile.job = job
        tile.state, tile.finished_at, tile.result = Tile.State.DONE, now, store_tile(tile, pixels)
        tile.result_size = len(pixels)
        tile.worker, tile.partition, tile.offset = result.worker, result.task_partition, result.task_offset
        tile.duration_ms, tile.stats = result.duration_ms, result.stats
        claims[tile.pk] = tile
    return claims


def store_tile(tile: Tile, pixels: bytes) -> str:
    """A tile's result pixels in storage, under a name of its own; the name."""
    return storage.save(f"tiles/{tile.job_id}/{tile.stage}-{tile.index}.tile", pixels)


def _check_tile(job: Job, tile: Tile, pixels: bytes) -> np.ndarray:
    """The result's pixels, viewed where they arrived (nothing decoded or copied), if they are a
    tile of the size its place needs."""
    try:
        _, array = decode_array(pixels)
    except CodecError as exc:
        raise MessageError(f"tile {tile.index}: {exc}") from None
    box = job.placed_box(tile)
    if array.shape[1::-1] != (box.width, box.height):
        raise MessageError(f"tile {tile.index} is {array.shape[1::-1]}, expected {(box.width, box.height)}")
    return array


def _announce(job: Job, tiles: list[Tile], count: int) -> None:
    """Tell the job's watchers, then move the job on if these tiles completed a stage or the job."""
    before = job.tiles_done - count  # each event counts the tiles done up to it, as if one by one
    push_all(job, [{**tile.event(), "tiles_done": before + n} for n, tile in enumerate(tiles, 1)])
    if not before:  # its first tiles: it runs
        push_status(job)
    move_on(job, {tile.stage for tile in tiles})


def record_heartbeat(value: bytes) -> None:
    Worker.record_heartbeat(Heartbeat.decode(value))


def signed(kind: str, message: Message) -> bool:
    """Did a worker sign this message? If not, it is refused: dead-lettered and counted."""
    try:
        signing.check(kind, message)
    except signing.Unsigned as exc:
        COUNTS[UNSIGNED] += 1
        dead_letter(message, str(exc))
        return False
    return True


def handle(message: Message) -> None:
    """Route one message to its step. Whatever the message holds, it is recorded or skipped:
    only an outage of the database or storage escapes (``durably`` retries it), so no message can
    stop the collector or come back after a restart."""
    name, where = message.topic(), kafka.where(message)
    try:
        if name == kafka.topic(kafka.RESULTS) and signed(signing.RESULT, message):
            for _, reason in record_result(message.value() or b""):
                dead_letter(message, reason)
        elif name == kafka.topic(kafka.HEARTBEATS) and signed(signing.HEARTBEAT, message):
            record_heartbeat(message.value() or b"")
    except OUTAGES:
        raise
    except MessageError as exc:
        _skip_malformed(where, exc)
    except Exception:  # a bug or a message nobody foresaw: skipped, not a crash loop
        COUNTS["failed"] += 1
        logger.exception("skipping message %s that could not be handled", where)


def handle_batch(messages: list[Message]) -> None:
    """Handle what one poll brought: its results recorded together (``record_results``), the rest
    one by one. Should the batch fail for any reason but an outage, each of its results is
    handled alone, so one bad message costs only itself."""
    results: list[tuple[Result, bytes]] = []
    decoded: dict[int, Message] = {}  # by id() of its Result: where a refused result came from
    for message in messages:
        if message.topic() != kafka.topic(kafka.RESULTS):
            handle(message)
            continue
        if not signed(signing.RESULT, message):
            continue
        try:
            result, pixels = Result.decode(message.value())
        except MessageError as exc:
            _skip_malformed(kafka.where(message), exc)
            continue
        results.append((result, pixels))
        decoded[id(result)] = message
    try:
        refused = record_results(results)
    except OUTAGES:
        raise
    except Exception:
        logger.exception("recording %d results together failed; recording them one by one", len(results))
        for message in decoded.values():
            handle(message)
        return
    for result, reason in refused:
        dead_letter(decoded[id(result)], reason)


@cache
def _dead_letters() -> Producer:
    return kafka.producer()


def dead_letter(message: Message, reason: str) -> None:
    """Park a refused message on ``results.dlq`` with why and where it came from; best effort
    (it is counted and logged either way), never waited for."""
    headers: signing.Headers = [
        ("reason", reason.encode(errors="replace")[:1000]),
        ("source", kafka.where(message).encode()),
    ]
    try:
        _dead_letters().produce(
            kafka.topic(kafka.RESULTS_DLQ), message.value() or b"", key=message.key(), headers=headers
        )
        _dead_letters().poll(0)
    except (BufferError, KafkaException) as exc:
        logger.error("could not dead-letter %s: %s", kafka.where(message), exc)


def _skip_malformed(where: str, exc: MessageError) -> None:
    COUNTS["malformed"] += 1
    logger.warning("skipping malformed message %s: %s", where, exc)


def _log_assignment(consumer, partitions) -> None:
    logger.info("collector assigned %s", ", ".join(f"{p.topic}[{p.partition}]" for p in partitions))


def watched_consumer() -> WatchedConsumer:
    topics = [kafka.topic(kafka.RESULTS), kafka.topic(kafka.HEARTBEATS)]
    return WatchedConsumer(
        kafka.COLLECTOR_GROUP,
        topics,
        "collector",
        on_assign=_log_assignment,
        config=kafka.fetching_ahead(settings.COLLECTOR_BATCH_MB),  # a batch held, one more fetched
    )


class ResultCollector(Loop):
    """Consume ``results`` and ``heartbeats`` a batch a step; sweep for stuck work and report
    this collector's state (``pipeline.models.Collector``) on their own clocks; between polls that
    brought nothing, check storage against the database (``jobs.sweep``) a page at a time, at most
    once every SWEEP_INTERVAL_SECONDS."""

    name = "collector"

    def __init__(self, consumer: WatchedConsumer | None = None, poll_seconds: float = 1.0) -> None:
        super().__init__()
        signing.require_keys(signing.RESULT)
        self.counters = COUNTS  # the step functions count into it
        self.consumer = consumer or watched_consumer()
        self.poll_seconds = poll_seconds
        self.next_sweep = self.next_report = time.monotonic()
        # An interval after the start: a collector restarted in a loop doesn't list storage each time.
        self.next_storage_sweep = time.monotonic() + settings.SWEEP_INTERVAL_SECONDS
        self.storage_sweep: Sweep | None = None
        self.storage_error = ""  # why storage refused the work in hand, while it waits
        self.pyramids = Builder()  # zoomable views of big jobs, beside the loop

    def start(self) -> None:
        self.consumer.subscribe()
        logger.info(
            "collector consuming %s from %s as group %s",
            ", ".join(self.consumer.topics),
            settings.KAFKA_BOOTSTRAP_SERVERS,
            kafka.group(kafka.COLLECTOR_GROUP),
        )
        self.durably(resume)

    def step(self) -> int:
        """Sweep and report when due, then record what one poll brought; the messages handled."""
        now = time.monotonic()
        if now >= self.next_sweep:
            self.durably(recover)
            self.durably(CANVASES.forget_finished)
            self.pyramids.when_due()
            self.next_sweep = now + settings.COLLECTOR_SWEEP_SECONDS
        self.report_when_due()
        most, most_bytes = settings.COLLECTOR_BATCH_MAX, settings.COLLECTOR_BATCH_MB << 20
        batch = self.consumer.poll_batch(self.poll_seconds, most, most_bytes)
        if not batch:
            close_old_connections()  # idle: drop a connection that is old or broken
            return 0
        for message in batch:
            if message.error():
                logger.warning("kafka: %s", message.error())
        batch = [message for message in batch if not message.error()]
        if self.durably(partial(handle_batch, batch)):
            for message in batch:
                self.consumer.store_offset(message)  # only once the work is in the database
        return len(batch)

    def idle(self) -> None:
        """A page of the storage sweep, when one is due or under way: results wait a page at most."""
        if self.storage_sweep is None:
            if not settings.SWEEP_INTERVAL_SECONDS or time.monotonic() < self.next_storage_sweep:
                return
            self.storage_sweep = Sweep()
            self.next_storage_sweep = time.monotonic() + settings.SWEEP_INTERVAL_SECONDS
        try:
            more = self.storage_sweep.step()
        except Exception:  # storage or the database away, or a bug: this sweep ends, the next comes
            logger.exception("the storage sweep stopped; the next in %g s", settings.SWEEP_INTERVAL_SECONDS)
            more = False
        if not more:
            self.storage_sweep = None

    def stop(self) -> None:
        self.pyramids.stop()  # the view under way is left, to be made again
        self.consumer.stop()  # commits the offsets stored above
        _dead_letters().flush(10)
        self.report(stopped=True)

    def report_when_due(self) -> None:
        now = time.monotonic()
        if now >= self.next_report:
            self.report()
            self.next_report = now + settings.COLLECTOR_REPORT_SECONDS

    def report(self, stopped: bool = False) -> None:
        """Write this collector's own state where /ready/, the system strip and /metrics read it."""
        try:
            assigned = [] if stopped else self.consumer.consumer.assignment()
        except RuntimeError:  # closed behind the loop's back: the watchdog rebuilds it next poll
            assigned = []
        held = [f"{tp.topic}[{tp.partition}]" for tp in assigned]
        try:
            Collector.report(self.consumer, held, self.storage_error, stopped, COUNTS)
        except (DatabaseError, InterfaceError) as exc:  # the report can wait; the work must not
            logger.warning("could not report the collector's state: %s", str(exc).strip())

    def durably(self, work: Callable[[], object]) -> bool:
        """Run ``work`` until the database and storage take it; False if asked to stop first
        (nothing stored, so the batch's offsets are not stored either: it is read again).

        While storage refuses, the collector's report says so. An assembly the outage broke off
        went back to running (``assembly``); once storage answers it is finished here (``resume``).
        """
        delay, interrupted = 0.5, False
        while True:
            try:
                work()
                if interrupted:
                    resume()
                if self.storage_error:
                    logger.info("storage answers again")
                    self.storage_error = ""
                    self.report()
                return True
            except (OperationalError, InterfaceError) as exc:
                outage = f"database unavailable ({str(exc).strip()})"
                connections.close_all()
            except storage.StorageUnavailable as exc:
                outage, interrupted = f"waiting for storage ({exc})", True
                self.storage_error = str(exc)
                self.report_when_due()
            if self.should_stop():
                return False
            logger.warning("%s; retrying in %.1f s", outage, delay)
            self.pause(delay)
            delay = longer(delay)
