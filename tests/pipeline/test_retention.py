"""pipeline.retention and `manage.py prune`: ended jobs past JOB_RETENTION_DAYS go with their files
(after their rows), unless kept; workers' and collectors' rows not seen for WORKER_RETENTION_DAYS
go too; a bounded batch a transaction; the idle dispatcher prunes at most once an interval. And a
job's tiles: dropped once its result is stored, kept while a retry may assemble them."""

import io
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from PIL import ImageFilter

from jobs import actions, previews
from jobs.models import Job
from pipeline import assembly
from pipeline.collector import record_result
from pipeline.models import Collector, Worker
from pipeline.retention import Pruned, Pruner, prune
from tests.images import noise

from ..jobs.factories import SMALL_PHOTO, make_job, result_image, results_for
from .test_assembly import while_assembling

pytestmark = pytest.mark.django_db
BLURRED = SMALL_PHOTO.filter(ImageFilter.GaussianBlur(2))


def done_job(owner, ended_days_ago: float = 0, **fields) -> Job:
    """A job finished from its real results (its result's previews made as it was assembled),
    ended that many days ago."""
    job = make_job(owner, SMALL_PHOTO)
    for value in results_for(job, SMALL_PHOTO):
        record_result(value)
    ended = timezone.now() - timedelta(days=ended_days_ago)
    Job.objects.filter(pk=job.pk).update(finished_at=ended, **fields)
    job.refresh_from_db()
    return job


def files_of(job: Job) -> list[str]:
    names = job.stored_files() + previews.stored_names(job.pk)
    assert names and all(default_storage.exists(name) for name in names)
    return names


@pytest.fixture
def retention(settings):
    settings.JOB_RETENTION_DAYS, settings.WORKER_RETENTION_DAYS = 30, 7
    return settings


def test_jobs_ended_past_the_retention_go_with_their_files_once_the_rows_have_gone(
    retention, alice, django_capture_on_commit_callbacks
):
    old = done_job(alice, ended_days_ago=31)
    old_failed = make_job(alice, noise(20, 20))
    old_failed.fail("a tile failed")
    Job.objects.filter(pk=old_failed.pk).update(finished_at=timezone.now() - timedelta(days=40))
    recent, kept = done_job(alice, ended_days_ago=29), done_job(alice, ended_days_ago=31, keep=True)
    running = make_job(alice, noise(20, 20))
    Job.objects.filter(pk=running.pk).update(created_at=timezone.now() - timedelta(days=90))
    doomed = files_of(old) + [old_failed.original.name]
    spared = files_of(recent) + files_of(kept) + [running.original.name]

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        pruned = prune()
        assert all(default_storage.exists(name) for name in doomed)  # not before the rows have gone
    assert callbacks and (pruned.jobs, pruned.bytes) == (2, old.stored_bytes + old_failed.stored_bytes)
    assert set(Job.objects.values_list("pk", flat=True)) == {recent.pk, kept.pk, running.pk}
    assert not any(default_storage.exists(name) for name in doomed)
    assert all(default_storage.exists(name) for name in spared)


def test_a_deletion_that_rolls_back_keeps_the_files(retention, alice, django_capture_on_commit_callbacks):
    old = done_job(alice, ended_days_ago=31)
    names = files_of(old)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        with transaction.atomic():
            assert prune().jobs == 1
            raise RuntimeError("the transaction around it fails")
    assert Job.objects.filter(pk=old.pk).exists()
    assert all(default_storage.exists(name) for name in names)


def test_the_keep_flag_spares_a_job_until_it_is_cleared(retention, alice, alice_api):
    old = done_job(alice, ended_days_ago=31)
    assert alice_api.post(f"/api/jobs/{old.pk}/keep/", {"keep": True}, format="json").json()["keep"] is True
    assert prune().jobs == 0
    alice_api.post(f"/api/jobs/{old.pk}/keep/", {"keep": False}, format="json")
    assert prune().jobs == 1 and not Job.objects.exists()


def test_zero_days_keeps_everything(retention, alice):
    retention.JOB_RETENTION_DAYS = retention.WORKER_RETENTION_DAYS = 0
    done_job(alice, ended_days_ago=3650)
    Worker.objects.create(id="w-old", host="h", last_seen=timezone.now() - timedelta(days=3650))
    assert (prune().jobs, prune().workers) == (0, 0)


def test_workers_and_collectors_not_seen_for_their_retention_go(retention):
    long_ago, lately = timezone.now() - timedelta(days=8), timezone.now() - timedelta(days=6)
    Worker.objects.create(id="w-gone", host="h", last_seen=long_ago)
    Worker.objects.create(id="w-here", host="h", last_seen=lately)
    Collector.objects.create(id="c-gone", host="h", pid=1, last_seen=long_ago)
    pruned = prune()
    assert (pruned.workers, pruned.collectors) == (1, 1)
    assert list(Worker.objects.values_list("id", flat=True)) == ["w-here"]
    assert not Collector.objects.exists()


def test_a_dry_run_prints_what_would_go_and_deletes_nothing(retention, alice):
    old = done_job(alice, ended_days_ago=31)
    Worker.objects.create(id="w-gone", host="h", last_seen=timezone.now() - timedelta(days=8))
    out = io.StringIO()
    call_command("prune", "--dry-run", stdout=out)
    mb = old.stored_bytes / 2**20
    assert out.getvalue().splitlines() == [
        "retention: jobs ended more than 30 days ago and not marked keep; "
        "workers and collectors not seen for 7 days; uploads not added to for 24 hours",
        f"would delete 1 jobs ({mb:.1f} MB of files), 1 workers, 0 collectors, 0 expired uploads",
    ]
    assert Job.objects.filter(pk=old.pk).exists() and Worker.objects.exists()
    out = io.StringIO()
    call_command("prune", stdout=out)
    deleted = f"deleted 1 jobs ({mb:.1f} MB of files), 1 workers, 0 collectors, 0 expired uploads"
    assert out.getvalue().splitlines()[1] == deleted
    assert not Job.objects.exists() and not Worker.objects.exists()


def test_a_batch_holds_no_more_tiles_than_its_bound_and_gives_way_to_work(retention, alice):
    for _ in range(3):
        done_job(alice, ended_days_ago=31)  # 6 tiles each
    assert prune(busy=lambda: True, tiles=10).jobs == 1  # one job a batch, then work waits
    remaining = prune(tiles=10)
    assert (remaining.jobs, remaining.batches, remaining.finished) == (2, 2, True)


def pruned_by(pruner: Pruner) -> Pruned:
    """What the pruner did, asserting it was time to."""
    pruned = pruner.when_due()
    assert pruned is not None
    return pruned


def test_the_idle_dispatcher_prunes_at_most_once_an_interval(retention, alice):
    retention.PRUNE_INTERVAL_SECONDS = 60
    now = [1000.0]
    pruner = Pruner(busy=lambda: False, clock=lambda: now[0])
    first = done_job(alice, ended_days_ago=31)
    assert pruned_by(pruner).jobs == 1 and not Job.objects.filter(pk=first.pk).exists()
    second = done_job(alice, ended_days_ago=31)
    now[0] += 59
    assert pruner.when_due() is None and Job.objects.filter(pk=second.pk).exists()  # not yet
    now[0] += 1
    assert pruned_by(pruner).jobs == 1
    retention.PRUNE_INTERVAL_SECONDS = 0  # never
    done_job(alice, ended_days_ago=31)
    now[0] += 3600
    assert pruner.when_due() is None and Job.objects.count() == 1


def test_a_pruning_that_gave_way_goes_on_at_the_next_idle_moment(retention, alice, monkeypatch):
    retention.PRUNE_INTERVAL_SECONDS = 60
    monkeypatch.setattr("pipeline.retention.JOBS_A_BATCH", 1)
    for _ in range(2):
        done_job(alice, ended_days_ago=31)
    pruner = Pruner(busy=lambda: True, clock=lambda: 0.0)
    assert pruned_by(pruner).finished is False and Job.objects.count() == 1
    assert pruned_by(pruner).jobs == 1 and not Job.objects.exists()  # due still: it had not finished


def test_an_idle_dispatcher_prunes_and_gives_way_to_tiles_that_wait(retention, alice, monkeypatch):
    from pipeline.dispatch import Dispatcher  # builds a producer: its broker is never reached here

    retention.DISPATCH_POLL_SECONDS = 0.01
    monkeypatch.setattr("pipeline.retention.JOBS_A_BATCH", 1)
    expired = [done_job(alice, ended_days_ago=31).pk for _ in range(3)]
    dispatcher = Dispatcher()
    try:
        make_job(alice, noise(20, 20))  # its tiles wait for the dispatcher: one batch, then them
        dispatcher.idle()
        assert Job.objects.filter(pk__in=expired).count() == 2
        Job.objects.unfinished().delete()  # nothing waits any more: the rest, at the next idle moment
        dispatcher.idle()
        assert not Job.objects.exists()
    finally:
        dispatcher.wakeups.close()


# A job's stored tiles, once its result is stored.


def test_a_done_jobs_tiles_go_once_its_result_is_stored(job, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        for value in results_for(job, SMALL_PHOTO):
            record_result(value)
    job.refresh_from_db()
    assert job.status == Job.Status.DONE
    assert default_storage.listdir(f"tiles/{job.pk}") == ([], [])
    assert set(job.tiles.values_list("result", flat=True)) == {""}  # no row names a file that is gone
    previews_bytes = sum(default_storage.size(name) for name in previews.stored_names(job.pk))
    assert (job.tile_bytes, job.stored_bytes) == (0, job.original.size + job.result.size + previews_bytes)
    assert not actions.retry(job)  # a done job is never retried: nothing needs its tiles again


def test_a_job_cancelled_while_assembled_keeps_its_tiles_and_its_retry_is_assembled_exact_from_them(
    job, alice_api, monkeypatch, django_capture_on_commit_callbacks
):
    with monkeypatch.context() as patched, django_capture_on_commit_callbacks(execute=True):
        while_assembling(patched, actions.cancel)
        for value in results_for(job, SMALL_PHOTO):
            record_result(value)
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED and job.tiles_done == job.tiles_total
    tiles = job.tile_files()
    assert len(tiles) == 6 and all(default_storage.exists(name) for name in tiles)

    assert alice_api.post(f"/api/jobs/{job.pk}/retry/").json()["status"] == "running"
    with django_capture_on_commit_callbacks(execute=True):
        for reopened in Job.objects.reopened_complete():  # what the dispatcher's step assembles
            assembly.assemble_job(reopened)
    job.refresh_from_db()
    assert job.status == Job.Status.DONE
    assert result_image(job).tobytes() == BLURRED.tobytes()
    assert job.tile_files() == [] and not any(default_storage.exists(name) for name in tiles)
