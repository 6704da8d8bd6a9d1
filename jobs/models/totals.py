"""Running totals kept as things happen -- tiles recorded, job runs ended -- so that /metrics reads
a few rows however long the history, and a job deleted by retention still counts."""

from __future__ import annotations

from collections.abc import Mapping

from django.db import connection, models

# The upper bounds (ms) of the tile duration histogram's buckets.
TILE_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
TILES_RECORDED = "tiles_recorded"
TILE_MS_COUNT, TILE_MS_SUM = "tile_ms_count", "tile_ms_sum"  # the tiles whose worker said how long


def bucket(ms: int) -> str:
    return f"tile_ms_le_{ms}"


def ended(status: str) -> str:
    return f"jobs_ended_{status}"


class Total(models.Model):
    """One running count; it only grows, as a Prometheus counter must."""

    name = models.CharField(primary_key=True, max_length=64)
    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} = {self.value}"

    @classmethod
    def add(cls, amounts: Mapping[str, int]) -> None:
        """Add to each named total, in one statement, in the transaction under way. The rows are
        taken in the order of their names, so two transactions adding to the same totals at once
        wait for each other rather than deadlock."""
        rows = sorted((name, amount) for name, amount in amounts.items() if amount)
        if not rows:
            return
        table = connection.ops.quote_name(cls._meta.db_table)
        values = ", ".join(["(%s, %s)"] * len(rows))
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (name, value) VALUES {values} "
                f"ON CONFLICT (name) DO UPDATE SET value = {table}.value + EXCLUDED.value",
                [part for row in rows for part in row],
            )

    @classmethod
    def count_tiles(cls, durations: list[int | None]) -> None:
        """Tiles recorded, each with what its worker said it took (None if it did not say)."""
        timed = [ms for ms in durations if ms is not None]
        amounts = {TILES_RECORDED: len(durations), TILE_MS_COUNT: len(timed), TILE_MS_SUM: sum(timed)}
        cls.add({**amounts, **{bucket(le): sum(ms <= le for ms in timed) for le in TILE_BUCKETS_MS}})

    @classmethod
    def count_ended(cls, status: str) -> None:
        """A job's run ended (done, failed, cancelled): a retried job's runs each count."""
        cls.add({ended(status): 1})

    @classmethod
    def read(cls) -> dict[str, int]:
        """Every total by name (one never added to is missing: 0)."""
        return dict(cls.objects.values_list("name", "value"))
