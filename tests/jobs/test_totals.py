"""jobs.models.Total: the running totals /metrics reads, kept as tiles are recorded and jobs end,
and started by the migration from the rows there were."""

import importlib

import pytest
from django.apps import apps

from jobs import actions
from jobs.models import Total
from jobs.models import totals as named
from pipeline.collector import record_result
from tests.images import noise

from .factories import SMALL_PHOTO, failed_result, make_job, results_for

pytestmark = pytest.mark.django_db


def test_totals_grow_as_tiles_are_recorded_and_runs_end(job, alice):
    values = results_for(job, SMALL_PHOTO)
    for value in values:
        record_result(value)
        record_result(value)  # a duplicate counts nothing
    actions.cancel(make_job(alice, noise(20, 20)))
    failed = make_job(alice, noise(20, 20))
    record_result(failed_result(failed.pk, 0, "MemoryError"))
    totals = Total.read()
    assert totals[named.TILES_RECORDED] == totals[named.TILE_MS_COUNT] == 6
    assert totals.get(named.TILE_MS_SUM, 0) == sum(job.tiles.values_list("duration_ms", flat=True))
    assert [totals.get(named.ended(status), 0) for status in ("done", "failed", "cancelled")] == [1, 1, 1]


def test_the_migration_starts_the_totals_from_the_rows_there_are(job, alice):
    for value in results_for(job, SMALL_PHOTO):
        record_result(value)
    actions.cancel(make_job(alice, noise(20, 20)))
    counted = Total.read()
    Total.objects.all().delete()
    importlib.import_module("jobs.migrations.0016_metric_totals").count_what_there_is(apps, None)
    assert Total.read() == counted
