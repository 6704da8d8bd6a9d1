"""manage.py make_previews: the previews jobs lack, made from their files (jobs from before the
pipeline made them with the job); those there are left, and a file that can't be read is told."""

import io

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command

from jobs import previews
from jobs.models import Job
from pipeline.collector import record_result
from tests.images import noise

from .factories import make_job, results_for

pytestmark = pytest.mark.django_db


def run() -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("make_previews", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_makes_what_each_job_lacks_once(alice, media_root):
    done, queued = make_job(alice, noise(64, 48), tile_size=32), make_job(alice, noise(40, 30))
    for value in results_for(done, noise(64, 48)):
        record_result(value)
    for name in previews.stored_names(done.pk):  # as a job finished before previews were made
        default_storage.delete(name)
    done.refresh_from_db()
    assert done.status == Job.Status.DONE
    assert run() == ("3 made, 0 could not be\n", "")  # done: original and result; queued: original
    assert [previews.is_stored(job, "original") for job in (done, queued)] == [True, True]
    assert previews.is_stored(done, "result") and not previews.is_stored(queued, "result")
    assert run() == ("0 made, 0 could not be\n", "")


def test_a_file_that_cannot_be_read_is_told_and_the_rest_are_made(alice, media_root):
    broken, whole = make_job(alice, noise(40, 30)), make_job(alice, noise(40, 30))
    with broken.original.open("wb") as handle:
        handle.write(b"not an image any more")
    out, err = run()
    assert out == "1 made, 1 could not be\n"
    assert err == f"job {broken.pk}: the original's previews could not be made (see the log)\n"
    assert previews.is_stored(whole, "original")
