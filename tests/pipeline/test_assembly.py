"""The end of a job: its result and the result's previews stored before it is done; a cancel or a
delete while it is assembled wins, and leaves no file behind; one assembler at a time; a starting
collector resumes only the assemblies nobody holds."""

import io

import pytest
from django.core.files.storage import default_storage
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from PIL import Image, ImageFilter

from jobs import actions, previews
from jobs.models import Job
from jobs.models.job import ASSEMBLY_LOCKS
from pipeline import assembly
from pipeline.collector import record_result
from pipeline.recovery import resume
from pipeline.stages import stored_tiles
from tests.images import photo
from tests.jobs.factories import SMALL_PHOTO, make_job, result_image, results_for, upload
from tests.locks import dies, held_elsewhere

pytestmark = pytest.mark.django_db
BLURRED = SMALL_PHOTO.filter(ImageFilter.GaussianBlur(2))


def stored(folder: str) -> list[str]:
    try:
        return default_storage.listdir(folder)[1]
    except FileNotFoundError:
        return []


def while_assembling(monkeypatch, act) -> None:
    """Do ``act(job)`` as the result is being stored: a request that comes during assembly."""
    store = assembly._store_result

    def store_then_act(job):
        name = store(job)
        act(Job.objects.get(pk=job.pk))
        return name

    monkeypatch.setattr(assembly, "_store_result", store_then_act)


def test_a_cancel_during_assembly_stays_cancelled_and_leaves_no_result(job, monkeypatch):
    while_assembling(monkeypatch, actions.cancel)
    for value in results_for(job, SMALL_PHOTO):
        record_result(value)
    job.refresh_from_db()
    assert (job.status, job.result.name) == (Job.Status.CANCELLED, "")
    assert stored("results") == []


def test_a_delete_during_assembly_leaves_no_file_behind(job, monkeypatch, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        while_assembling(monkeypatch, actions.delete)
        for value in results_for(job, SMALL_PHOTO):
            record_result(value)
    assert not Job.objects.filter(pk=job.pk).exists()
    assert stored("results") == [] and stored("originals") == [] and stored(f"tiles/{job.pk}") == []
    assert stored(f"previews/{job.pk}") == []  # the result's, made before the delete came


def test_a_job_another_process_is_assembling_is_neither_assembled_nor_resumed_here(job):
    values = results_for(job, SMALL_PHOTO)
    other = held_elsewhere(ASSEMBLY_LOCKS, str(job.pk))  # a live collector assembling it
    try:
        for value in values:
            record_result(value)  # the last would assemble it: the lock is the other's
        job.refresh_from_db()
        assert job.status == Job.Status.RUNNING and job.tiles_done == job.tiles_total
        Job.objects.filter(pk=job.pk).update(status=Job.Status.ASSEMBLING)  # as the other has it
        resume()  # a collector starting meanwhile
        job.refresh_from_db()
        assert job.status == Job.Status.ASSEMBLING and not job.result
    finally:
        dies(other)
    resume()
    job.refresh_from_db()
    assert job.status == Job.Status.DONE
    assert result_image(job).tobytes() == BLURRED.tobytes()


def test_deleting_a_user_deletes_their_jobs_files(job, alice, django_capture_on_commit_callbacks):
    for value in results_for(job, SMALL_PHOTO):
        record_result(value)
    job.refresh_from_db()
    assert default_storage.exists(job.result.name) and default_storage.exists(job.original.name)
    with django_capture_on_commit_callbacks(execute=True):
        alice.delete()
    assert stored("results") == [] and stored("originals") == []


def test_a_submit_whose_rows_fail_leaves_no_original(alice, monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("the database refused the tiles")

    monkeypatch.setattr("jobs.models.Tile.objects.bulk_create", refuse)
    with pytest.raises(RuntimeError):
        actions.submit(alice, upload(SMALL_PHOTO), [{"op": "invert"}])
    assert stored("originals") == []


@pytest.mark.parametrize("canvas_mb", [256, 0], ids=["from its canvas", "from storage"])
@pytest.mark.parametrize("output_format", ["png", "jpeg"])
def test_a_done_job_has_its_results_previews(alice, settings, canvas_mb, output_format, caplog):
    settings.COLLECTOR_CANVAS_MB = canvas_mb
    caplog.set_level("INFO", "pipeline.assembly")
    image = photo("coffee.png").crop((0, 0, 300, 200))  # a photograph: its JPEG preview is close
    job = make_job(alice, image, operations=[{"op": "invert"}], tile_size=64, output_format=output_format)
    for value in results_for(job, image):
        record_result(value)
    job.refresh_from_db()
    assert job.status == Job.Status.DONE
    assert ("from its canvas" if canvas_mb else "from storage") in caplog.text
    with job.result.open("rb") as handle:
        expected = previews.fitted(Image.open(handle).convert("RGB"), 160)
    shown = Image.open(io.BytesIO(previews.stored_preview(job, "result", 160)[0]))
    assert shown.size == expected.size == (160, 107)
    difference = sum(abs(a - b) for a, b in zip(shown.tobytes(), expected.tobytes(), strict=True))
    assert difference / len(expected.tobytes()) < 8  # the same picture, give or take a JPEG


@pytest.fixture
def blurred_job(alice):
    """A finished stage of 6 × 4 tiles of 50 px, stored, whose output is ``BLURRED`` cropped."""
    image = SMALL_PHOTO.crop((0, 0, 300, 200))
    job = make_job(alice, image, operations=[{"op": "sharpen"}, {"op": "equalize"}], tile_size=50)
    for value in results_for(job, image):
        record_result(value)
    job.refresh_from_db()
    assert job.stage == 1
    return job, image.filter(ImageFilter.SHARPEN)


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    boxes=st.lists(
        st.tuples(st.integers(0, 299), st.integers(0, 199), st.integers(1, 120), st.integers(1, 90)),
        min_size=1,
        max_size=6,
    )
)
def test_a_stage_read_from_its_tiles_equals_the_stage_whole(blurred_job, boxes):
    job, whole = blurred_job
    pixels = assembly.StageTiles(job, 0)
    assert (pixels.mode, pixels.size) == (whole.mode, whole.size)
    for left, top, width, height in boxes:
        box = (left, top, min(left + width, 300), min(top + height, 200))
        assert pixels.crop(box).tobytes() == whole.crop(box).tobytes()


def test_a_stage_of_any_number_of_tiles_is_listed_in_one_query(blurred_job, django_assert_num_queries):
    job, _ = blurred_job  # 24 tiles: a column left out of .only() would be one more query each
    with django_assert_num_queries(1):
        assembly.StageTiles(job, 0)
    with django_assert_num_queries(1):
        stored_tiles(job, 1)


def test_a_stage_read_from_its_tiles_holds_only_the_tile_rows_its_last_crop_crossed(blurred_job, monkeypatch):
    job, whole = blurred_job
    pixels = assembly.StageTiles(job, 0)
    reads: list[str] = []
    read = assembly.storage.read

    def counted(name: str) -> bytes:
        reads.append(name)
        return read(name)

    monkeypatch.setattr(assembly.storage, "read", counted)
    for top in range(0, 200, 10):  # bands of 10 rows, top to bottom
        assert pixels.crop((0, top, 300, top + 10)).tobytes() == whole.crop((0, top, 300, top + 10)).tobytes()
        assert pixels.nbytes == 300 * 50 * len(whole.mode)  # one row of tiles
    assert sorted(reads) == sorted(set(reads)) and len(reads) == 24  # each tile read once
