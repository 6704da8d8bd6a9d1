"""A job: its chain, its stages' geometry, its timings and the state changes of its run. (The lock
order: ``jobs.models``.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cached_property
from pathlib import PurePath

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Case, F, Value, When
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from imagepipe.core.chain import split_stages
from imagepipe.core.operations import Step, chain_output_mode, parse_chain
from imagepipe.core.output import FORMATS
from imagepipe.core.pipeline import final_placement, output_size, stage_grid, stage_tile_count
from imagepipe.core.tiling import Box, TileSpec

from ..files import delete_on_commit
from .cancellation import PendingCancellation
from .tile import Tile
from .totals import Total

# The dispatcher holds it while it claims tiles (one dispatcher at a time); pauses and cancels wait
# for it.
DISPATCH_LOCK = 0x494D_5044  # "IMPD"
# Job.TERMINAL's values, for the indexes' conditions (a Meta can't see its model's names).
ENDED = ["done", "failed", "cancelled"]
# The namespace of the jobs' assembly locks (two-key advisory locks: the job's key is its hash).
ASSEMBLY_LOCKS = 0x494D_5041  # "IMPA"


class JobQuerySet(models.QuerySet):
    def visible_to(self, user) -> JobQuerySet:
        """Staff see every job; everyone else sees their own."""
        return self if user.is_staff else self.filter(owner=user)

    def dispatchable(self) -> JobQuerySet:
        """Jobs whose queued tiles the dispatcher may send: not paused, not ended."""
        return self.filter(status__in=[Job.Status.QUEUED, Job.Status.RUNNING])

    def unfinished(self) -> JobQuerySet:
        """Queued, running, paused or assembling: jobs the pipeline still owes a result."""
        return self.exclude(status__in=Job.TERMINAL)

    def expired(self, before: datetime) -> JobQuerySet:
        """Jobs that ended before ``before`` and are not to be kept: what retention deletes."""
        return self.filter(status__in=Job.TERMINAL, finished_at__lt=before, keep=False)

    def reopened_complete(self) -> JobQuerySet:
        """Jobs retried with every tile already in (an assembly that failed, a cancel during it):
        running, and none of their tiles recorded in this run. The dispatcher assembles them."""
        return self.filter(status=Job.Status.RUNNING, tiles_done=F("tiles_total"), last_tile_at__isnull=True)

    def count_unfinished(self) -> dict[str, int]:
        """Each unfinished status with its number of jobs, zero included: read through the index of
        unfinished jobs, so it costs the same however many have ended."""
        counts = dict(self.unfinished().order_by().values_list("status").annotate(n=models.Count("pk")))
        return {status: counts.get(status, 0) for status in Job.Status.values if status not in Job.TERMINAL}


class Job(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        PAUSED = "paused"
        ASSEMBLING = "assembling"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Priority(models.IntegerChoices):
        LOW = 0
        NORMAL = 1
        HIGH = 2

    class Viewer(models.TextChoices):
        """A done job's zoomable view (``pipeline.pyramids``): DeepZoom pyramids of its original
        and its result, made for jobs of PYRAMID_MIN_PIXELS or more."""

        NONE = "", "none"  # not made (yet, or too small for one)
        READY = "ready"
        FAILED = "failed"

    TERMINAL = (Status.DONE, Status.FAILED, Status.CANCELLED)
    ASSEMBLED = (Status.ASSEMBLING, Status.DONE)  # every tile is in

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="jobs")
    original = models.FileField(upload_to="originals/")
    original_name = models.CharField(max_length=255)
    operations = models.JSONField()
    tile_size = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    mode = models.CharField(max_length=8)
    output_mode = models.CharField(max_length=8)
    output_format = models.CharField(max_length=8, default="png")
    output_quality = models.PositiveSmallIntegerField(null=True, blank=True)
    icc_profile = models.BinaryField(blank=True, default=b"")  # kept only if it fits the output
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    # Higher priority gets its tiles into the dispatch window first; equal priorities share it.
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.NORMAL)
    stage = models.PositiveSmallIntegerField(default=0)  # the stage whose tiles are in flight
    # Retries so far. Tasks carry it and a cancellation names it, so workers drop the tiles of a
    # cancelled round but not those a later retry sends.
    generation = models.PositiveIntegerField(default=0)
    tiles_total = models.PositiveIntegerField()
    tiles_done = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # The marks of the latest run (a retry starts a new one; created_at stays the submission):
    # queued, first tile sent, first tile recorded, last tile recorded, ended.
    queued_at = models.DateTimeField(null=True, blank=True)  # None: not retried, created_at
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    last_tile_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    result = models.FileField(upload_to="results/", blank=True)
    # Bytes of its files in storage (original, tiles, result, previews), counted where they are
    # written and dropped, so a user's quota is a sum of rows, not a walk through storage; and how
    # much of that is its tiles, which go once the result holds their pixels.
    stored_bytes = models.BigIntegerField(default=0)
    tile_bytes = models.BigIntegerField(default=0)
    keep = models.BooleanField(default=False, help_text="never deleted by retention (JOB_RETENTION_DAYS)")
    viewer = models.CharField(max_length=8, choices=Viewer.choices, default=Viewer.NONE, blank=True)

    objects = JobQuerySet.as_manager()
    notes: list[str]  # what its submitter should know that did not stop it (actions.submit; not stored)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The few jobs still under way, however long the history, in the order of their status
            # (so counting them by status reads these entries alone): /metrics, recovery.
            models.Index(fields=["status"], condition=~models.Q(status__in=ENDED), name="job_unfinished"),
            # The ended ones by when, for retention.
            models.Index(fields=["finished_at"], condition=models.Q(status__in=ENDED), name="job_ended"),
        ]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("job-detail", args=[self.pk])

    @cached_property
    def steps(self):
        return parse_chain(self.operations)

    @cached_property
    def stages(self) -> list[list[Step]]:
        """The chain cut before each global-statistics step (operations.split_stages)."""
        return split_stages(self.steps)

    def stage_operations(self) -> list[list[dict]]:
        """The submitted chain's steps (as the user wrote them), stage by stage."""
        stages, start = [], 0
        for steps in self.stages:
            stages.append(self.operations[start : start + len(steps)])
            start += len(steps)
        return stages

    @property
    def moves_pixels(self) -> bool:
        """Does any step move pixels (turn, flip, resize), so the result no longer lies over its
        original pixel for pixel?"""
        return self.output_size != (self.width, self.height) or any(
            step.op.kind in ("geometric", "resample") for step in self.steps
        )

    @property
    def last_stage(self) -> int:
        return len(self.stages) - 1

    def stage_size(self, stage: int) -> tuple[int, int]:
        """The size of the image a stage works on (geometric steps before it may turn it)."""
        earlier = [step for steps in self.stages[:stage] for step in steps]
        return output_size(earlier, (self.width, self.height))

    def stage_mode(self, stage: int) -> str:
        """The mode of the image a stage works on (``last_stage + 1``: the result's)."""
        return chain_output_mode(self.mode, [step for steps in self.stages[:stage] for step in steps])

    def stage_tiles(self, stage: int, tile_size: int | None = None) -> list[TileSpec]:
        """A stage's tiles (at the job's tile size, or ``tile_size``): a resampling stage's over its
        output, each with the window of its input it reads (``pipeline.stage_grid``)."""
        return stage_grid(self.stages[stage], self.stage_size(stage), tile_size or self.tile_size)

    def tile_count(self, tile_size: int | None = None) -> int:
        """Every stage's tiles at ``tile_size`` (the job's own by default), from the geometry alone."""
        size = tile_size or self.tile_size
        return sum(
            stage_tile_count(steps, self.stage_size(stage), size) for stage, steps in enumerate(self.stages)
        )

    def all_tiles(self) -> list[tuple[int, TileSpec]]:
        return [(stage, spec) for stage in range(len(self.stages)) for spec in self.stage_tiles(stage)]

    @property
    def output_size(self) -> tuple[int, int]:
        return output_size(self.steps, (self.width, self.height))

    def canvas(self, stage: int) -> tuple[int, int]:
        """The size of a stage's output: the mosaic's canvas while that stage's tiles come in."""
        return output_size(self.stages[stage], self.stage_size(stage))

    def placed_box(self, tile: Tile) -> Box:
        """Where a tile's processed pixels land in its stage's output (geometric steps move them)."""
        return self.placed(tile.stage, tile.core)

    def placed(self, stage: int, core: Box) -> Box:
        """Where the pixels of ``core`` land in ``stage``'s output."""
        return final_placement(self.stages[stage], core, self.stage_size(stage)).box

    @property
    def result_filename(self) -> str:
        """What the result downloads as: the uploaded file's name with "-imagepipe" and the
        output's extension (rocket.jpg -> rocket-imagepipe.png)."""
        stem = PurePath(self.original_name).stem or "image"
        return f"{stem}-imagepipe{FORMATS[self.output_format].extension}"

    @property
    def thumbnail(self) -> str | None:
        """Which preview stands for the job in lists: the result's once it is done, else the
        original's once tiles were sent (the dispatcher makes it from the original it decodes, before
        the first send); None before, and the page shows a placeholder (jobs.previews)."""
        if self.status == Job.Status.DONE:
            return "result"
        return "original" if self.dispatched_at or self.tiles_done else None

    @property
    def group_name(self) -> str:
        """The Channels group that receives this job's progress events."""
        return f"job-{self.id}"

    def mark_dispatched(self, when: datetime) -> None:
        """The run's first send, at ``when`` (in the transaction that marks the tiles sent, so no tile
        can be recorded before the job says it was sent)."""
        Job.objects.filter(pk=self.pk, dispatched_at__isnull=True).update(dispatched_at=when)

    def record_tiles_done(self, count: int, stored: int = 0) -> None:
        """Count ``count`` more finished tiles, whose files hold ``stored`` bytes, in one statement;
        the first moves the job to running."""
        now = timezone.now()
        Job.objects.filter(pk=self.pk).update(
            tiles_done=F("tiles_done") + count,
            tile_bytes=F("tile_bytes") + stored,
            stored_bytes=F("stored_bytes") + stored,
            last_tile_at=now,
            started_at=Coalesce("started_at", Value(now)),
            status=Case(When(status=Job.Status.QUEUED, then=Value(Job.Status.RUNNING)), default=F("status")),
        )
        # The dispatcher's marks too: the caller may have read the job before its first send.
        self.refresh_from_db(fields=["tiles_done", "status", "started_at", "last_tile_at", "dispatched_at"])

    PHASES = ("queued", "processing", "assembling")

    def timings(self, now: datetime | None = None) -> dict[str, float | None]:
        """Seconds the latest run has spent in each phase so far: queued (until its first tile was
        sent), processing (until its last tile was recorded), assembling (until the result was
        stored). A phase not reached is None; the phase under way (``phase``) counts up to ``now``.
        Each phase starts where the one before ended, so none is ever negative."""
        now = now or timezone.now()
        end = self.finished_at or now
        bounds = [self.queued_at or self.created_at, self.dispatched_at, self.assembly_began]
        seconds: dict[str, float | None] = {}
        for name, start, stop in zip(self.PHASES, bounds, [*bounds[1:], end], strict=True):
            if start is None or (name == "assembling" and self.status not in self.ASSEMBLED):
                seconds[name] = None
                continue
            stop = min(stop or end, end)
            seconds[name] = max((stop - start).total_seconds(), 0.0)
        return seconds

    @property
    def assembly_began(self) -> datetime | None:
        """When the last tile was recorded, if the job got that far."""
        return self.last_tile_at if self.status in self.ASSEMBLED else None

    @property
    def phase(self) -> str | None:
        """The phase under way, which the job page counts on by itself: None once the job ended
        or while it is paused."""
        if self.status in (Job.Status.QUEUED, Job.Status.RUNNING):
            return "processing" if self.dispatched_at else "queued"
        return "assembling" if self.status == Job.Status.ASSEMBLING else None

    @property
    def duration(self) -> float | None:
        return (self.finished_at - self.created_at).total_seconds() if self.finished_at else None

    def claim_next_stage(self, finished: int) -> bool:
        """Compare-and-set the stage from ``finished`` to the next; True for the one caller that wins."""
        return bool(Job.objects.filter(pk=self.pk, stage=finished).update(stage=finished + 1))

    def claim_assembly(self, resuming: bool = False) -> bool:
        """Compare-and-set running (or paused) -> assembling once every tile is in; True for the
        winner. ``resuming``: one already assembling is taken too (its assembler is gone, and the
        caller holds its assembly lock)."""
        sources = [Job.Status.RUNNING, Job.Status.PAUSED, *([Job.Status.ASSEMBLING] if resuming else [])]
        claimed = Job.objects.filter(pk=self.pk, status__in=sources, tiles_done=F("tiles_total")).update(
            status=Job.Status.ASSEMBLING
        )
        if claimed:
            self.status = Job.Status.ASSEMBLING
        return bool(claimed)

    def finish(self, result_name: str, result_bytes: int) -> bool:
        """Compare-and-set assembling -> done with its stored result, and let go of its stored tiles,
        whose pixels the result now holds: no row names them once this commits, and then they are
        deleted. False, with nothing changed, if the job ended (a cancel) or went (a delete) while it
        was assembled: the result is not its own, and its tiles stay for a retry to assemble again."""
        now = timezone.now()
        with transaction.atomic():
            tiles = self.tile_files()  # the tiles first, then the job (the lock order: jobs.models)
            Tile.objects.filter(job=self).exclude(result="").update(result="")
            finished = Job.objects.filter(pk=self.pk, status=Job.Status.ASSEMBLING).update(
                result=result_name,
                status=Job.Status.DONE,
                finished_at=now,
                stored_bytes=F("stored_bytes") - F("tile_bytes") + result_bytes,
                tile_bytes=0,
            )
            if not finished:
                transaction.set_rollback(True)  # the tiles' names come back with the rollback
                return False
            Total.count_ended(Job.Status.DONE)
            delete_on_commit(tiles)
        self.refresh_from_db(fields=["result", "status", "finished_at", "stored_bytes", "tile_bytes"])
        return True

    def release_assembly(self) -> bool:
        """Hand back a claimed assembly that could not store its result (storage away): running,
        every tile in, for the next try (``recovery.resume``, or the dispatcher's for a retry).
        False if a cancel or a delete came meanwhile."""
        assembling = Job.objects.filter(pk=self.pk, status=Job.Status.ASSEMBLING)
        released = assembling.update(status=Job.Status.RUNNING)
        if released:
            self.status = Job.Status.RUNNING
        return bool(released)

    def lose_result(self) -> bool:
        """A done job whose result file storage no longer has fails, saying so, and starts over:
        its tiles went with the result's success (``discard_tile_files``), so they are queued
        again and a retry runs the job from its original. Compare-and-set on the name it had,
        which it keeps (a file restored later is not deleted as nobody's)."""
        error = f"the result file {self.result.name} is missing from storage"
        with transaction.atomic():
            tiles = Tile.objects.filter(job_id=self.pk)
            list(tiles.select_for_update().values_list("pk", flat=True))  # the lock order: tiles first
            lost = Job.objects.filter(pk=self.pk, status=Job.Status.DONE, result=self.result.name).update(
                status=Job.Status.FAILED, error=error, stage=0, tiles_done=0
            )
            if lost:
                tiles.update(
                    state=Tile.State.QUEUED, result="", stats=None, worker="", partition=None, offset=None,
                    duration_ms=None, dispatched_at=None, finished_at=None,
                )  # fmt: skip
        if lost:
            self.refresh_from_db(fields=["status", "error", "stage", "tiles_done"])
        return bool(lost)

    @contextmanager
    def assembly_lock(self) -> Iterator[bool]:
        """This job's assembly lock while the block runs; whether this process holds it. A
        Postgres session lock: it dies with the connection of a process that dies, so a lock free
        on a job still assembling says its assembler is gone."""
        key: list[int | str] = [ASSEMBLY_LOCKS, str(self.pk)]
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", key)
            held = bool(cursor.fetchone()[0])
        try:
            yield held
        finally:
            if held:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", key)

    def tile_files(self) -> list[str]:
        """The names of the job's stored tiles."""
        return [str(name) for name in self.tiles.exclude(result="").values_list("result", flat=True)]

    def stored_files(self) -> list[str]:
        """The names of the job's original, result and stored tiles (``previews`` has its own)."""
        return [str(field.name) for field in (self.original, self.result) if field] + self.tile_files()

    def count_stored(self, size: int) -> None:
        """Count a file of ``size`` bytes just stored for the job (a preview)."""
        Job.objects.filter(pk=self.pk).update(stored_bytes=F("stored_bytes") + size)

    def fail(self, error: str) -> bool:
        """Fail a job that has not ended yet; True if this call failed it."""
        return self._end(Job.Status.FAILED, error[:2000])

    def cancel(self) -> bool:
        """Cancel a job that has not ended yet; late results for it are ignored, and the workers are
        to be told (``PendingCancellation``, in the same transaction)."""
        return self._end(Job.Status.CANCELLED, "cancelled by the user")

    def _end(self, status: str, error: str) -> bool:
        with transaction.atomic():
            _after_sends()
            ended = (
                Job.objects.filter(pk=self.pk)
                .unfinished()
                .update(status=status, error=error, finished_at=timezone.now())
            )
            if ended:
                self.refresh_from_db(fields=["status", "error", "finished_at", "generation"])
            if ended and status == Job.Status.CANCELLED:
                PendingCancellation.objects.create(job_id=self.pk, generation=self.generation)
            if ended:
                Total.count_ended(status)
        if ended:
            # Its tiles hold no place in the dispatch window any more; a retry queues them again.
            Tile.objects.filter(job=self).in_flight().requeue()
        return bool(ended)

    def pause(self) -> bool:
        """Stop dispatching this job's queued tiles (those in flight finish); True if this call did it."""
        return self._move([Job.Status.QUEUED, Job.Status.RUNNING], Job.Status.PAUSED)

    def resume(self) -> bool:
        """Dispatch a paused job's queued tiles again; True if this call did it."""
        return self._move([Job.Status.PAUSED], Job.Status.RUNNING if self.tiles_done else Job.Status.QUEUED)

    def _move(self, sources: list[str], status: str) -> bool:
        with transaction.atomic():
            _after_sends()
            moved = Job.objects.filter(pk=self.pk, status__in=sources).update(status=status)
        self.refresh_from_db(fields=["status"])
        return bool(moved)

    def reopen(self) -> bool:
        """A failed or cancelled job goes back to work (compare-and-set); True if this call did it."""
        status = Job.Status.RUNNING if self.tiles_done else Job.Status.QUEUED
        reopened = Job.objects.filter(
            pk=self.pk, status__in=[Job.Status.FAILED, Job.Status.CANCELLED]
        ).update(
            status=status,
            error="",
            generation=F("generation") + 1,
            # A new run: its phases are timed afresh.
            queued_at=timezone.now(),
            dispatched_at=None,
            started_at=None,
            last_tile_at=None,
            finished_at=None,
        )
        if reopened:
            self.refresh_from_db()
        return bool(reopened)


def _after_sends() -> None:
    """Wait, inside a transaction, until no dispatcher is sending (it holds ``DISPATCH_LOCK`` for a
    step, and checks each job is still dispatchable under it): once a pause or a cancel has
    answered, no send that began before it can still mark tiles sent."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [DISPATCH_LOCK])
