"""/metrics costs the same however long the history: the same queries, reading the same rows, with
ten finished jobs as with two hundred; its counters come from running totals, which outlive the
rows retention deletes. Against the real database; the broker address is one nothing listens on
(so the lag and the dead letters are missing, as when Kafka is away)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from jobs import actions
from jobs.models import Job, Tile
from pipeline.collector import record_result
from tests.images import noise
from tests.jobs.factories import SMALL_PHOTO, make_job, results_for

pytestmark = pytest.mark.django_db
HISTORY_TABLES = (Job._meta.db_table, Tile._meta.db_table)


@pytest.fixture(autouse=True)
def no_broker(settings):
    settings.KAFKA_BOOTSTRAP_SERVERS = "127.0.0.1:1"


def scrape(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200, response.content
    return {family.name: family for family in text_string_to_metric_families(response.content.decode())}


@pytest.fixture
def finished(alice) -> Job:
    """A real submission of 4 tiles, finished: what the history is made of."""
    job = make_job(alice, noise(32, 32), tile_size=16)
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(status=Job.Status.DONE, finished_at=now, tiles_done=4)
    job.tiles.update(state=Tile.State.DONE, duration_ms=7, finished_at=now)
    job.refresh_from_db()
    return job


def finished_jobs(template: Job, count: int) -> None:
    """``count`` more finished jobs like ``template``, its rows copied: ended as they are written,
    as a history's rows were long ago (no row here was ever an unfinished job's)."""
    fields = {f.attname: getattr(template, f.attname) for f in Job._meta.concrete_fields if f.attname != "id"}
    jobs = Job.objects.bulk_create(Job(**fields) for _ in range(count))
    tiles = list(template.tiles.all())
    Tile.objects.bulk_create(
        Tile(
            job=job,
            **{f.attname: getattr(tile, f.attname) for f in Tile._meta.concrete_fields if f.attname in SPOT},
            state=Tile.State.DONE,
            duration_ms=7,
            finished_at=template.finished_at,
        )
        for job in jobs
        for tile in tiles
    )


SPOT = ("stage", "index", "col", "row", "x", "y", "width", "height")


def rows_read() -> int:
    """Live rows this transaction has read so far from the jobs' and tiles' tables: returned by
    sequential scans, and fetched from the heap by index, index-only and bitmap scans. Not the
    index entries a scan returns: those include the dead entries of other tests' rolled-back rows
    until autovacuum removes them, at a moment no test chooses. (Nothing here is committed, so no
    page is all-visible and an index-only scan fetches every row it reads too.)"""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT sum(pg_stat_get_xact_tuples_returned(oid) + pg_stat_get_xact_tuples_fetched(oid))
              FROM pg_class WHERE relname = ANY(%(tables)s)
            """,
            {"tables": list(HISTORY_TABLES)},
        )
        tables = int(cursor.fetchone()[0])
        cursor.execute(
            """
            SELECT coalesce(sum(pg_stat_get_xact_tuples_fetched(indexrelid)), 0) FROM pg_index
             WHERE indrelid IN (SELECT oid FROM pg_class WHERE relname = ANY(%(tables)s))
            """,
            {"tables": list(HISTORY_TABLES)},
        )
        return tables + int(cursor.fetchone()[0])


def cost(client) -> tuple[int, int]:
    """(queries, rows read from the history) of one scrape, planned as for a long history: a few
    hundred rows are read whole faster than through an index, so the planner is told to take any
    other way there is, as it would on a history of millions. A query with no other way still
    reads every row, and the count shows it."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # until the test's transaction ends
    before = rows_read()
    with CaptureQueriesContext(connection) as captured:
        scrape(client)
    return len(captured), rows_read() - before


def test_a_scrape_reads_the_same_rows_with_ten_finished_jobs_as_with_two_hundred(
    client, staff, alice, finished
):
    make_job(alice, noise(20, 20), tile_size=16)  # one still queued
    finished_jobs(finished, 9)
    client.force_login(staff)
    scrape(client)  # the session and the user, read once
    few = cost(client)
    finished_jobs(finished, 190)
    assert Job.objects.count() == 201 and Tile.objects.done().count() == 800
    assert cost(client) == few


def test_the_counters_are_running_totals_that_outlive_the_rows(client, staff, alice, job):
    for value in results_for(job, SMALL_PHOTO):
        record_result(value)
    cancelled = make_job(alice, noise(20, 20), tile_size=16)
    actions.cancel(cancelled)
    make_job(alice, noise(20, 20), tile_size=16)  # queued
    durations = list(job.tiles.values_list("duration_ms", flat=True))
    client.force_login(staff)
    before = scrape(client)

    assert {s.labels["status"]: s.value for s in before["imagepipe_jobs"].samples} == {
        "queued": 1,
        "running": 0,
        "paused": 0,
        "assembling": 0,
    }
    ended = {s.labels["status"]: s.value for s in before["imagepipe_jobs_ended"].samples}
    assert ended == {"done": 1, "failed": 0, "cancelled": 1}
    assert before["imagepipe_tiles_processed"].samples[0].value == 6
    samples = before["imagepipe_tile_duration_seconds"].samples
    latency = {(s.name, s.labels.get("le")): s.value for s in samples}
    assert latency["imagepipe_tile_duration_seconds_count", None] == 6
    assert latency["imagepipe_tile_duration_seconds_sum", None] == pytest.approx(sum(durations) / 1000)
    assert latency["imagepipe_tile_duration_seconds_bucket", "+Inf"] == 6
    assert latency["imagepipe_tile_duration_seconds_bucket", "10.0"] == sum(ms <= 10_000 for ms in durations)

    actions.delete(job)
    actions.delete(cancelled)  # as retention would: the counters keep what happened
    after = scrape(client)
    for name in ("imagepipe_jobs_ended", "imagepipe_tiles_processed", "imagepipe_tile_duration_seconds"):
        assert after[name].samples == before[name].samples
