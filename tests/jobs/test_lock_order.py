"""The lock order of ``jobs.models``: every transaction that touches more than one of its tables
takes them in ``LOCK_ORDER``, one table a statement. Each is run here and its statements read back
in order."""

from collections import Counter
from datetime import timedelta

import pytest
from django.core.management.color import no_style
from django.core.management.sql import sql_flush
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobs.events import snapshot
from jobs.models import LOCK_ORDER, Job, Tile, Total
from pipeline.collector import record_result
from pipeline.dispatch import Claim
from pipeline.retention import prune
from tests.jobs.factories import SMALL_PHOTO, failed_result, results_for

pytestmark = pytest.mark.django_db


def transactions(statements: list[str]) -> list[list[str]]:
    """The statements of each outermost atomic block (a savepoint inside the test's transaction);
    all of them as one if the code ran none (it joined the transaction it found)."""
    blocks: list[list[str]] = []
    depth = 0
    for sql in statements:
        if sql.startswith("SAVEPOINT"):
            depth += 1
            if depth == 1:
                blocks.append([])
        elif sql.startswith("RELEASE SAVEPOINT") or sql.startswith("ROLLBACK TO SAVEPOINT"):
            depth -= 1
        elif depth:
            blocks[-1].append(sql)
    return blocks or [statements]


def tables_in_order(statements: list[str]) -> list[str]:
    """The tables of LOCK_ORDER as the statements first touch them; a statement touching two is refused."""
    order: list[str] = []
    for sql in statements:
        touched = [table for table in LOCK_ORDER if f'"{table}"' in sql]
        assert len(touched) < 2, f"one statement takes two tables: {sql}"
        order += [table for table in touched if table not in order]
    return order


def run(call) -> list[list[str]]:
    """The tables each transaction of ``call()`` touches, in the order it touches them."""
    with CaptureQueriesContext(connection) as captured:
        call()
    blocks = transactions([query["sql"] for query in captured.captured_queries])
    return [tables_in_order(block) for block in blocks]


def assert_in_lock_order(orders: list[list[str]]) -> None:
    several = [order for order in orders if len(order) > 1]
    assert several, "no transaction touched two of the tables: the check would prove nothing"
    assert all(order == sorted(order, key=LOCK_ORDER.index) for order in several), orders


def test_the_check_sees_a_transaction_that_takes_the_job_first():
    assert tables_in_order(['UPDATE "jobs_job" SET x', 'SELECT * FROM "jobs_tile"']) == [
        "jobs_job",
        "jobs_tile",
    ]
    with pytest.raises(AssertionError):
        assert_in_lock_order([["jobs_job", "jobs_tile"]])
    with pytest.raises(AssertionError):
        assert_in_lock_order([["jobs_tile"], ["jobs_job"]])  # none took two: nothing proven


def test_the_collector_recording_tiles_takes_the_tiles_first(job):
    first, second = results_for(job, SMALL_PHOTO)[:2]
    assert_in_lock_order(run(lambda: record_result(first)) + run(lambda: record_result(second)))


def test_the_collector_recording_a_failure_takes_the_tiles_first(job):
    assert_in_lock_order(run(lambda: record_result(failed_result(job.pk, 1, "MemoryError"))))
    assert Tile.objects.get(job=job, index=1).state == Tile.State.FAILED


def test_the_dispatchers_claim_takes_the_tiles_first(job):
    claim = None

    def take():
        nonlocal claim
        claim = Claim.take(job, {0, 1, 2}, Counter({0: 0, 1: 0}), "a-nonce")

    assert_in_lock_order(run(take))
    assert claim is not None and len(claim.tiles()) == 3


def test_a_snapshot_reads_the_tiles_first(job):
    assert_in_lock_order(run(lambda: snapshot(job.pk)))


def test_a_cancel_ends_the_job_before_it_writes_what_the_workers_are_told(job):
    assert_in_lock_order(run(job.cancel))


def test_the_finish_lets_go_of_the_tiles_before_it_ends_the_job_and_counts_it(job):
    job.tiles.update(state=Tile.State.DONE, result="tiles/stored.tile")
    Job.objects.filter(pk=job.pk).update(status=Job.Status.ASSEMBLING, tiles_done=job.tiles_total)
    job.refresh_from_db()
    orders = run(lambda: job.finish("results/x.png", 100))
    assert orders == [[Tile._meta.db_table, Job._meta.db_table, Total._meta.db_table]]
    assert_in_lock_order(orders)


def test_retention_locks_the_tiles_before_the_jobs_it_deletes(job, settings):
    settings.JOB_RETENTION_DAYS = 30
    job.cancel()
    Job.objects.filter(pk=job.pk).update(finished_at=timezone.now() - timedelta(days=31))
    orders = run(prune)
    assert not Job.objects.exists()
    assert_in_lock_order(orders)


def test_the_suites_flush_takes_the_tables_in_the_lock_order():
    (statement,) = sql_flush(no_style(), connection)
    positions = [statement.index(f'"{table}"') for table in LOCK_ORDER]
    assert positions == sorted(positions)


def test_a_done_job_losing_its_result_takes_the_tiles_first(job):
    for value in results_for(job, SMALL_PHOTO):
        record_result(value)
    job.refresh_from_db()
    assert_in_lock_order(run(job.lose_result))
    assert job.status == "failed" and set(job.tiles.values_list("state", flat=True)) == {Tile.State.QUEUED}


def test_a_claim_costs_the_same_queries_for_one_tile_as_for_many(job):
    def claimed(indices: set[int]) -> int:
        with CaptureQueriesContext(connection) as queries:
            claim = Claim.take(job, indices, Counter({0: 0}), "a-nonce")
        assert claim is not None and len(claim.tiles()) == len(indices)
        return len(queries)

    assert job.tiles_total > 4
    assert claimed({0}) == claimed(set(range(1, job.tiles_total)))
