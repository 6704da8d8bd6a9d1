"""A job's tiles: where each lies, where it lands, and its state (queued, sent, done, failed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import connection, models

from imagepipe.core.tiling import Box, TileSpec

if TYPE_CHECKING:
    from .job import Job


class TileQuerySet(models.QuerySet):
    def record_finished(self, tiles: list[Tile]) -> None:
        """Write what the collector filled in on each finished tile (``Tile.RECORDED``): one
        statement, sent for every tile at once (``bulk_update`` would build a CASE per field and
        row, a statement that grows with the batch times its fields)."""
        fields = [field for field in Tile._meta.concrete_fields if field.name in Tile.RECORDED]
        quote = connection.ops.quote_name
        assignments = ", ".join(
            f"{quote(field.get_attname_column()[1] or field.attname)} = %s" for field in fields
        )
        sql = f"UPDATE {quote(Tile._meta.db_table)} SET {assignments} WHERE {quote('id')} = %s"
        rows = [
            [field.get_db_prep_save(getattr(tile, field.attname), connection) for field in fields] + [tile.pk]
            for tile in tiles
        ]
        with connection.cursor() as cursor:
            cursor.executemany(sql, rows)

    def pending(self, stage: int | None = None) -> TileQuerySet:
        """Tiles not recorded yet (of one stage, if given)."""
        pending = self.filter(state__in=Tile.PENDING)
        return pending if stage is None else pending.filter(stage=stage)

    def done(self) -> TileQuerySet:
        return self.filter(state=Tile.State.DONE)

    def count_by(self, *fields: str) -> list[tuple]:
        """(the fields' values..., how many tiles) for each group, from this table alone."""
        return list(self.order_by().values_list(*fields).annotate(n=models.Count("pk")))

    def queued(self, stage: int | None = None) -> TileQuerySet:
        """Pending tiles waiting for the dispatcher: never sent, or sent back by a retry or recovery."""
        return self.pending(stage).filter(state=Tile.State.QUEUED)

    def in_flight(self, stage: int | None = None) -> TileQuerySet:
        """Pending tiles published to ``tasks`` and not recorded yet."""
        return self.pending(stage).filter(state=Tile.State.SENT)

    def requeue(self) -> int:
        """Queue these tiles again for the dispatcher, as if never sent; how many."""
        return self.update(state=Tile.State.QUEUED, dispatched_at=None)


class Tile(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued"  # waiting for the dispatcher
        SENT = "sent"  # published to ``tasks`` (at ``dispatched_at``), not recorded yet
        DONE = "done"  # recorded by the collector
        FAILED = "failed"  # a worker gave up on it, with ``error``

    PENDING = (State.QUEUED, State.SENT)  # not recorded yet

    job = models.ForeignKey("jobs.Job", on_delete=models.CASCADE, related_name="tiles")
    stage = models.PositiveSmallIntegerField(default=0)
    index = models.PositiveIntegerField()
    col = models.PositiveIntegerField()
    row = models.PositiveIntegerField()
    x = models.PositiveIntegerField()
    y = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=255, blank=True)
    partition = models.IntegerField(null=True, blank=True)
    offset = models.BigIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    # The last send's random nonce (pipeline.dispatch.Claim): only a result carrying it is recorded.
    nonce = models.CharField(max_length=64, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    result = models.FileField(upload_to="tiles/", blank=True)
    error = models.TextField(blank=True)
    stats = models.JSONField(null=True, blank=True)  # the histogram the next stage's global step reads

    objects = TileQuerySet.as_manager()
    result_size: int  # bytes of the result the collector has just stored (not stored: its job counts them)
    # What the collector fills in when a tile's result is recorded.
    RECORDED = ("state", "worker", "partition", "offset", "duration_ms", "finished_at", "result", "stats")

    class Meta:
        ordering = ["job_id", "stage", "index"]  # the column: "job" would join jobs_job, and lock it too
        constraints = [
            models.UniqueConstraint(fields=["job", "stage", "index"], name="unique_tile_per_job_stage")
        ]
        indexes = [
            # What the dispatcher asks several times a second, whatever the history holds:
            # the tiles waiting or in flight, and those recorded in the last seconds.
            models.Index(
                fields=["state", "dispatched_at"],
                condition=models.Q(state__in=["queued", "sent"]),
                name="tile_pending",
            ),
            models.Index(fields=["finished_at"], name="tile_finished_at"),
        ]

    def __str__(self) -> str:
        return f"tile {self.index} of {self.job_id}"

    @classmethod
    def from_spec(cls, job: Job, spec: TileSpec, stage: int = 0) -> Tile:
        core = spec.core
        return cls(
            job=job,
            stage=stage,
            index=spec.index,
            col=spec.col,
            row=spec.row,
            x=core.left,
            y=core.top,
            width=core.width,
            height=core.height,
        )

    @property
    def core(self) -> Box:
        return Box(self.x, self.y, self.x + self.width, self.y + self.height)

    def event(self) -> dict:
        """The websocket message announcing this tile's end: done, or failed with the worker's reason."""
        return {
            "type": "tile",
            "state": self.state,
            "error": self.error,
            "stage": self.stage,
            "index": self.index,
            "x": self.x,
            "y": self.y,
            "width": self.width,
            "height": self.height,
            "worker": self.worker,
            "attempts": self.attempts,
            "duration_ms": self.duration_ms,
            "partition": self.partition,
            "offset": self.offset,
            **self.placement(),
            "tiles_done": self.job.tiles_done,
            "tiles_total": self.job.tiles_total,
        }

    def placement(self) -> dict:
        """Where the mosaic draws this tile: its box in its stage's output, and that output's size."""
        box = self.job.placed_box(self)
        return {
            "place": [box.left, box.top, box.width, box.height],
            "canvas": list(self.job.canvas(self.stage)),
        }
