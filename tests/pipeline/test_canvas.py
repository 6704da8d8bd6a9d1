"""pipeline.canvas: the result pasted as tiles are recorded is the result assembled from storage, and
a canvas that could be incomplete is never used."""

import pytest
from PIL import Image

from jobs import previews
from jobs.models import Job
from pipeline.assembly import next_stage_input
from pipeline.canvas import CANVASES
from pipeline.collector import record_result
from tests.core.reference import reference
from tests.images import noise, photo
from tests.jobs.factories import make_job, result_image, results_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_canvases():
    CANVASES.held.clear()
    CANVASES.refused.clear()


def run(job, image, values=None):
    for value in values or results_for(job, image):
        record_result(value)
    job.refresh_from_db()
    assert job.status == Job.Status.DONE
    return result_image(job)


@pytest.mark.parametrize(
    ("mode", "chain", "output"),
    [
        ("RGB", [{"op": "gaussian_blur", "radius": 2}], {}),
        (
            "RGB",
            [{"op": "rotate", "angle": 90}, {"op": "median", "size": 3}],
            {},
        ),  # tiles move: bands of the turned grid
        ("L", [{"op": "transpose"}, {"op": "sharpen"}], {}),
        ("RGBA", [{"op": "box_blur", "radius": 1}], {}),
        ("LA", [{"op": "flip_vertical"}], {}),
        ("RGB", [{"op": "invert"}], {"output_format": "webp"}),  # not a PNG: encoded from the canvas
    ],
)
def test_a_result_from_its_canvas_is_the_whole_image_reference(alice, caplog, mode, chain, output):
    image = noise(150, 110, mode, seed=3)
    job = make_job(alice, image, operations=chain, tile_size=32, **output)
    caplog.set_level("INFO", "pipeline.assembly")
    result = run(job, image)
    assert result.tobytes() == reference(image, chain).tobytes() and result.mode == mode
    assert f"job {job.pk} assembled from its canvas" in caplog.text
    assert not CANVASES.held


def test_only_the_last_stage_is_pasted_and_its_result_is_exact(alice, caplog):
    image = photo("coffee.png").crop((0, 0, 200, 130))
    chain = [{"op": "gaussian_blur", "radius": 2}, {"op": "equalize"}, {"op": "box_blur", "radius": 1}]
    job = make_job(alice, image, operations=chain, tile_size=64)
    for value in results_for(job, image):
        record_result(value)
    assert not CANVASES.held  # stage 0 of 2 is not the result
    job.refresh_from_db()
    intermediate, table = next_stage_input(job, 0)
    caplog.set_level("INFO", "pipeline.assembly")
    assert (
        run(job, image, results_for(job, intermediate, 1, table)).tobytes()
        == reference(image, chain).tobytes()
    )
    assert f"job {job.pk} assembled from its canvas" in caplog.text


def test_a_collector_that_missed_tiles_assembles_from_storage(job, caplog):
    image = photo("camera.png").crop((0, 0, 150, 100))
    values = results_for(job, image)
    record_result(values[0])
    CANVASES.held.clear()  # as after a restart: the first tile was recorded by another process
    caplog.set_level("INFO", "pipeline.assembly")
    assert run(job, image, values[1:]).tobytes() == reference(image, job.operations).tobytes()
    assert f"job {job.pk} assembled from storage" in caplog.text
    assert str(job.pk) not in CANVASES.refused  # forgotten once assembled


def test_the_canvas_of_a_job_that_ended_unassembled_is_let_go(job):
    record_result(results_for(job, photo("camera.png").crop((0, 0, 150, 100)))[0])
    assert set(CANVASES.held) == {str(job.pk)}
    job.cancel()
    CANVASES.forget_finished()
    assert not CANVASES.held


def test_a_png_canvas_holds_no_band_in_memory_and_deletes_each_once_written(alice, settings, caplog):
    settings.COLLECTOR_CANVAS_MB = 1  # less than the 1.3 MB image: a PNG's bands wait on disk
    image = noise(700, 640, "RGB", seed=5)
    job = make_job(alice, image, operations=[{"op": "median", "size": 3}], tile_size=64)
    in_memory, on_disk = [], []
    caplog.set_level("INFO", "pipeline.assembly")
    for value in results_for(job, image):  # the dispatcher's order: a row of tiles after another
        record_result(value)
        for canvas in CANVASES.held.values():
            in_memory.append(canvas.nbytes)
            on_disk.append(len(canvas.spools) + len(canvas.unwritten))
    job.refresh_from_db()
    assert job.status == Job.Status.DONE and f"job {job.pk} assembled from its canvas" in caplog.text
    assert result_image(job).tobytes() == reference(image, job.operations).tobytes()
    assert max(in_memory) == 0 and max(on_disk) <= 2  # the band under way, and one being written


def test_bands_held_back_wait_on_disk_until_the_tile_above_them_comes(alice, settings, caplog):
    settings.COLLECTOR_CANVAS_MB = 1
    image = noise(700, 640, "RGB", seed=6)
    job = make_job(alice, image, operations=[{"op": "invert"}], tile_size=64)
    caplog.set_level("INFO")
    first, *rest = results_for(job, image)
    for value in rest:  # the first tile lost and sent again: no band can be written until it comes
        record_result(value)
    (canvas,) = CANVASES.held.values()
    assert canvas.nbytes == 0 and len(canvas.spools) == 10 and not canvas.unwritten
    assert run(job, image, [first]).tobytes() == reference(image, job.operations).tobytes()
    assert f"job {job.pk} assembled from its canvas" in caplog.text


@pytest.mark.parametrize("chain", [[{"op": "flip_vertical"}], [{"op": "rotate", "angle": 90}]])
def test_a_chain_whose_first_tiles_land_low_waits_on_disk_for_a_png(alice, settings, caplog, chain):
    settings.COLLECTOR_CANVAS_MB = 1  # the 1.3 MB image would not fit in memory
    image = noise(700, 640, "RGB", seed=6)
    job = make_job(alice, image, operations=chain, tile_size=64)
    caplog.set_level("INFO")
    result = run(job, image)
    assert f"job {job.pk} assembled from its canvas" in caplog.text
    assert result.tobytes() == reference(image, chain).tobytes()


def test_canvases_of_other_formats_share_the_budget_by_what_they_will_hold(alice, settings, caplog):
    settings.COLLECTOR_CANVAS_MB = 1  # a 400 × 300 RGB image is 0.36 MB: two fit, three do not
    image = noise(400, 300, "RGB", seed=8)
    jobs = [make_job(alice, image, [{"op": "invert"}], tile_size=64, output_format="webp") for _ in range(3)]
    values = [results_for(job, image) for job in jobs]
    for job_values in values:
        record_result(job_values[0])  # each begins with one tile: little held yet, all to come
    assert len(CANVASES.held) == 2  # the third would pass the budget once all three were full
    caplog.set_level("INFO", "pipeline.assembly")
    for job, job_values in zip(jobs, values, strict=True):
        assert run(job, image, job_values[1:]).tobytes() == reference(image, job.operations).tobytes()
    assert f"job {jobs[2].pk} assembled from storage" in caplog.text


@pytest.mark.parametrize("output", ["webp", "tiff", "jpeg"])
def test_another_format_is_assembled_from_storage_unless_the_whole_image_fits(
    alice, settings, caplog, output
):
    settings.COLLECTOR_CANVAS_MB = 1  # the 1.3 MB image does not fit
    image = noise(700, 640, "RGB", seed=6)
    job = make_job(alice, image, operations=[{"op": "invert"}], tile_size=64, output_format=output)
    caplog.set_level("INFO")
    run(job, image)
    assert str(job.pk) not in CANVASES.held and f"job {job.pk} assembled from storage" in caplog.text


def test_no_canvas_at_all_with_a_budget_of_nothing(job, settings, caplog):
    settings.COLLECTOR_CANVAS_MB = 0
    image = photo("camera.png").crop((0, 0, 150, 100))
    caplog.set_level("INFO", "pipeline.assembly")
    assert run(job, image).tobytes() == reference(image, job.operations).tobytes()
    assert f"job {job.pk} assembled from storage" in caplog.text


def test_the_previews_a_png_canvas_reduces_as_it_writes_are_those_of_the_whole_result(alice, monkeypatch):
    image = noise(4100, 200, "L", seed=7)  # reduced by 2, then resampled to 1000 wide
    job = make_job(alice, image, operations=[{"op": "invert"}], tile_size=64)
    given, store = [], previews.store

    def storing(job, which, pixels):
        given.append(pixels)
        return store(job, which, pixels)

    monkeypatch.setattr(previews, "store", storing)
    result = run(job, image)
    assert isinstance(given[0], Image.Image)  # not the canvas: its preview, made as its bands were written
    assert previews.fitted(given[0], 1000).tobytes() == previews.fitted(result, 1000).tobytes()
