"""jobs.sweep and ``manage.py sweep_storage``: storage against the database, on the real storage
(a folder of this test's) and the real database."""

import io
import os
import time
import uuid

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from jobs.models import Job
from jobs.storage import StorageUnavailable
from jobs.sweep import Sweep
from pipeline.collector import record_result
from tests.jobs.factories import SMALL_PHOTO, make_job, results_for

pytestmark = pytest.mark.django_db
DAY = 86_400


def stored(name: str, age: float = 0) -> str:
    """A file in storage, last written ``age`` seconds ago."""
    name = default_storage.save(name, ContentFile(b"bytes"))
    if age:
        then = time.time() - age
        os.utime(default_storage.path(name), (then, then))
    return name


def done(job: Job) -> Job:
    for value in results_for(job, SMALL_PHOTO):
        record_result(value)
    job.refresh_from_db()
    assert job.status == Job.Status.DONE
    return job


def test_files_no_row_names_are_deleted_once_older_than_the_grace_period(
    job, alice, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):  # its tiles' files go as it is done
        finished = done(make_job(alice, SMALL_PHOTO))
    running = job
    record_result(results_for(running, SMALL_PHOTO)[0])  # one tile stored, its job under way
    stray = [
        stored("originals/stray.png", DAY),
        stored("results/stray.png", DAY),
        stored(f"tiles/{uuid.uuid4()}/0-0.tile", DAY),  # a job deleted while its files stayed
        stored(f"tiles/{finished.pk}/0-0.tile", DAY),  # a done job's: its result holds the pixels
        stored(f"previews/{uuid.uuid4()}/original-160.jpg", DAY),
    ]
    young = stored("results/just-written.png")  # its row may be about to commit
    theirs = stored("elsewhere/not-ours.txt", DAY)
    named = [finished.original.name, finished.result.name, running.original.name]
    named.append(running.tiles.get(index=0).result.name)

    counts = Sweep().run()

    assert not any(default_storage.exists(name) for name in stray)
    assert all(default_storage.exists(name) for name in [young, theirs, *named])
    assert (counts["unnamed_deleted"], counts["unnamed_recent"]) == (5, 1)
    assert sorted(default_storage.listdir("tiles")[0]) == [str(running.pk)]  # emptied folders go


def test_a_dry_run_changes_nothing_and_says_what_it_would_do(job):
    stray = stored("results/stray.png", DAY)
    default_storage.delete(job.original.name)
    out = io.StringIO()
    call_command("sweep_storage", "--dry-run", stdout=out)
    assert default_storage.exists(stray)
    assert f"{stray}: no row names it; would be deleted" in out.getvalue()
    assert f"job {job.pk}: its original {job.original.name} is missing from storage" in out.getvalue()
    assert out.getvalue().splitlines()[-1] == (
        "dry run: 1 files listed; 1 no row names would delete, 0 more kept (younger than 3600 s); "
        "missing: 0 results (0 jobs failed), 1 originals, 0 tiles"
    )


def test_a_done_job_whose_result_is_gone_fails_saying_so_and_downloads_say_why(job, alice, alice_api):
    lost, kept = done(job), done(make_job(alice, SMALL_PHOTO))
    default_storage.delete(str(lost.result.name))
    out = io.StringIO()
    call_command("sweep_storage", stdout=out)
    lost.refresh_from_db()
    assert (lost.status, lost.error) == (
        Job.Status.FAILED,
        f"the result file {lost.result.name} is missing from storage",
    )
    assert (lost.tiles_done, lost.tiles.queued().count()) == (0, lost.tiles_total)  # a retry runs it all
    assert Job.objects.get(pk=kept.pk).status == Job.Status.DONE
    assert "missing: 1 results (1 jobs failed), 0 originals, 0 tiles" in out.getvalue()
    response = alice_api.get(f"/api/jobs/{lost.pk}/result/")
    assert response.status_code == 409 and response.json() == {"error": "the job is failed; no result yet"}
    assert alice_api.get(f"/api/jobs/{lost.pk}/").json()["error"] == lost.error
    assert alice_api.post(f"/api/jobs/{lost.pk}/retry/").json()["status"] == "queued"


def test_storage_holding_no_results_at_all_fails_no_job(job):
    finished = done(job)
    default_storage.delete(str(finished.result.name))  # the only one: more likely the wrong storage
    out = io.StringIO()
    call_command("sweep_storage", stdout=out)
    assert Job.objects.get(pk=finished.pk).status == Job.Status.DONE
    assert "(not failed: storage holds no results)" in out.getvalue()


def test_recorded_tiles_gone_from_a_job_under_way_are_told_of(job, alice):
    values = results_for(job, SMALL_PHOTO)
    for value in values[:3]:
        record_result(value)
    default_storage.delete(job.tiles.get(index=1).result.name)
    other = make_job(alice, SMALL_PHOTO)
    record_result(results_for(other, SMALL_PHOTO)[0])
    default_storage.delete(other.tiles.get(index=0).result.name)
    os.rmdir(default_storage.path(f"tiles/{other.pk}"))  # its whole folder gone
    notes: list[str] = []
    counts = Sweep(note=notes.append).run()
    assert counts["missing_tiles"] == 2
    assert f"job {job.pk}: 1 of its recorded tiles are missing from storage" in notes
    assert f"job {other.pk}: 1 of its recorded tiles are missing from storage" in notes


def test_a_sweep_during_a_storage_outage_judges_nothing(job, outage):
    finished = done(job)
    outage.begin()
    with pytest.raises(CommandError, match="storage unavailable, nothing more judged"):
        call_command("sweep_storage", stdout=io.StringIO())
    outage.end()
    assert Job.objects.get(pk=finished.pk).status == Job.Status.DONE


def test_storage_away_midway_ends_the_sweep_before_it_judges_a_row(job, outage):
    finished = done(job)
    sweep = Sweep()
    assert sweep.step()  # the first page of originals
    outage.begin()
    with pytest.raises(StorageUnavailable):
        sweep.run()
    assert Job.objects.get(pk=finished.pk).status == Job.Status.DONE


def test_the_idle_collector_sweeps_a_page_at_a_time_once_due_and_then_not_for_an_interval(
    collector, monkeypatch
):
    monkeypatch.setattr("jobs.sweep.PAGE", 1)
    strays = [stored(f"originals/stray-{n}.png", DAY) for n in range(3)]

    def sweeping() -> bool:
        return collector.storage_sweep is not None

    collector.idle()
    assert not sweeping()  # not due: an interval after the start
    collector.next_storage_sweep = time.monotonic()
    collector.idle()
    assert sweeping() and default_storage.exists(strays[-1])  # a page done, the rest to come
    for _ in range(20):
        if not sweeping():
            break
        collector.idle()
    assert not sweeping()
    assert not any(default_storage.exists(name) for name in strays)
    again = stored("originals/later.png", DAY)
    collector.idle()
    assert not sweeping() and default_storage.exists(again)  # the next one is an interval away
