"""Zoomable views: the DeepZoom pyramids of a big job's original and result, made beside the
collector's loop and served a tile at a time to those who may see the job."""

import io
import math
import xml.etree.ElementTree as ElementTree
import zipfile

import pytest
from PIL import Image, ImageOps
from rest_framework.test import APIClient

from imagepipe.core.deepzoom import TILE_SIZE
from jobs.models import Job
from pipeline import pyramids
from pipeline.collector import record_result
from tests.core.reference import reference
from tests.images import noise
from tests.jobs.factories import make_job, result_image, results_for, submit_job, upload
from tests.locks import dies, held_elsewhere

pytestmark = pytest.mark.django_db
SIDE = TILE_SIZE


@pytest.fixture(autouse=True)
def exact_tiles(settings):
    settings.PYRAMID_MIN_PIXELS = 100_000
    settings.PYRAMID_TILE_FORMAT = "png"  # exact, to compare pixel for pixel


def done_job(owner, image, operations=None, **fields) -> Job:
    job = make_job(owner, image, operations or [{"op": "invert"}], tile_size=128, **fields)
    for value in results_for(job, image):
        record_result(value)
    job.refresh_from_db()
    assert job.status == Job.Status.DONE
    return job


def build() -> None:
    """What the collector's builder thread does when due (tests/integration shows the thread)."""
    pyramids.build_one()


def tile(api: APIClient, job: Job, which: str, level: int, col: int, row: int) -> Image.Image:
    response = api.get(f"/api/jobs/{job.pk}/pyramid/{which}_files/{level}/{col}_{row}.png")
    assert response.status_code == 200, response.content
    return Image.open(io.BytesIO(response.content))


def test_a_big_job_s_pyramids_hold_its_original_and_result_pixel_for_pixel(alice, alice_api):
    image = noise(700, 500, seed=3)
    job = done_job(alice, image)
    build()
    job.refresh_from_db()
    assert job.viewer == Job.Viewer.READY

    descriptor = alice_api.get(f"/api/jobs/{job.pk}/pyramid/result.dzi")
    assert descriptor.status_code == 200 and descriptor["Content-Type"] == "application/xml"
    root = ElementTree.fromstring(descriptor.content)
    size = root.find("{http://schemas.microsoft.com/deepzoom/2008}Size")
    assert size is not None and (size.get("Width"), size.get("Height")) == ("700", "500")
    assert (root.get("TileSize"), root.get("Overlap"), root.get("Format")) == ("254", "1", "png")

    top = math.ceil(math.log2(700))
    result = result_image(job).convert("RGB")
    assert result.tobytes() == ImageOps.invert(image).tobytes()
    # A tile holds its 254² and a pixel of its neighbours on each side, cut at the image's edges.
    inner = tile(alice_api, job, "result", top, 1, 1)
    assert inner.convert("RGB").tobytes() == result.crop((SIDE - 1, SIDE - 1, 2 * SIDE + 1, 500)).tobytes()
    corner = tile(alice_api, job, "original", top, 2, 1)
    assert corner.convert("RGB").tobytes() == image.crop((2 * SIDE - 1, SIDE - 1, 700, 500)).tobytes()
    assert tile(alice_api, job, "result", 0, 0, 0).size == (1, 1)  # down to a pixel


@pytest.mark.parametrize("output_format", ["avif", "heic"])
def test_a_result_encoded_whole_is_shown_zoomable_from_its_own_pixels(alice, alice_api, output_format):
    job = done_job(alice, noise(700, 500, seed=3), output_format=output_format)
    build()
    job.refresh_from_db()
    assert job.viewer == Job.Viewer.READY
    stored = result_image(job).convert("RGB")  # lossy: the pyramid holds what was stored
    assert tile(alice_api, job, "result", math.ceil(math.log2(700)), 1, 1).convert("RGB").tobytes() == (
        stored.crop((SIDE - 1, SIDE - 1, 2 * SIDE + 1, 500)).tobytes()
    )


def test_a_job_under_the_size_gets_none_and_its_page_offers_none(alice, client, settings):
    settings.PYRAMID_MIN_PIXELS = 10**9
    job = done_job(alice, noise(300, 200))
    build()
    job.refresh_from_db()
    assert job.viewer == Job.Viewer.NONE
    client.force_login(alice)
    assert 'id="zoom"' not in client.get(f"/jobs/{job.pk}/").content.decode()


def test_only_those_who_may_see_the_job_see_its_pyramids(alice, bob_api, alice_api, client):
    job = done_job(alice, noise(400, 300))
    path = f"/api/jobs/{job.pk}/pyramid/result.dzi"
    assert alice_api.get(path).status_code == 404  # not made yet
    build()
    assert alice_api.get(path).status_code == 200
    assert bob_api.get(path).status_code == 404
    assert bob_api.get(f"/api/jobs/{job.pk}/pyramid/result_files/0/0_0.png").status_code == 404
    assert APIClient().get(path).status_code == 401
    assert alice_api.get(f"/api/jobs/{job.pk}/pyramid/result_files/99/0_0.png").status_code == 404
    client.force_login(alice)
    assert 'id="zoom"' in client.get(f"/jobs/{job.pk}/").content.decode()


def test_a_job_a_builder_holds_is_left_to_it(alice):
    job = done_job(alice, noise(400, 300))
    other = held_elsewhere(pyramids.PYRAMID_LOCK, str(job.pk))  # another builder
    assert pyramids.build_one() is None
    job.refresh_from_db()
    assert job.viewer == Job.Viewer.NONE
    dies(other)
    build()  # the lock gone with its builder: made
    job.refresh_from_db()
    assert job.viewer == Job.Viewer.READY


def test_an_unreadable_result_marks_the_viewer_failed_and_the_job_stays_done(alice, caplog):
    job = done_job(alice, noise(400, 300))
    with job.result.open("wb") as handle:
        handle.write(b"not a picture")
    build()
    job.refresh_from_db()
    assert (job.status, job.viewer) == (Job.Status.DONE, Job.Viewer.FAILED)
    assert "its zoomable view could not be made" in caplog.text


def test_a_turned_original_is_shown_upright_as_the_pipeline_turned_it(alice, alice_api):
    stored = noise(300, 500, "L", seed=4)
    exif = Image.Exif()
    exif[0x0112] = 8  # turn it a quarter
    job = submit_job(alice, upload(stored, exif=exif.tobytes()), [{"op": "invert"}], 128)
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(job.original.read())))
    for value in results_for(job, upright):
        record_result(value)
    build()
    job.refresh_from_db()
    assert job.viewer == Job.Viewer.READY and (job.width, job.height) == (500, 300)
    top = math.ceil(math.log2(500))
    first = tile(alice_api, job, "original", top, 0, 0)
    assert first.mode == "L" and first.tobytes() == upright.crop((0, 0, SIDE + 1, SIDE + 1)).tobytes()
    assert ImageOps.invert(result_image(job)).tobytes() == upright.tobytes()


def test_a_deepzoom_result_is_an_exact_pyramid_and_the_viewer_shows_it(alice, alice_api):
    image = noise(600, 300, "RGBA", seed=5)
    chain = [{"op": "invert"}]
    job = done_job(alice, image, chain, output_format="deepzoom")
    expected = reference(image, chain)
    top = math.ceil(math.log2(600))
    with zipfile.ZipFile(job.result.open("rb")) as archive:
        assert "pyramid.dzi" in archive.namelist()
        stored = archive.read(f"pyramid_files/{top}/1_0.png")
    assert (
        Image.open(io.BytesIO(stored)).tobytes()
        == expected.crop((SIDE - 1, 0, 2 * SIDE + 1, SIDE + 1)).tobytes()
    )

    download = alice_api.get(f"/api/jobs/{job.pk}/result/")
    assert download["Content-Type"] == "application/zip"
    assert 'filename="photo-imagepipe.zip"' in download["Content-Disposition"]
    build()  # the original's view; the result is its own
    job.refresh_from_db()
    assert job.viewer == Job.Viewer.READY
    served = alice_api.get(f"/api/jobs/{job.pk}/pyramid/result_files/{top}/1_0.png")
    assert served.status_code == 200 and served.content == stored


def test_a_view_abandoned_part_way_is_left_undone_and_made_by_the_next_builder(alice, caplog):
    job = done_job(alice, noise(700, 500, seed=4))
    caplog.set_level("INFO", "pipeline.pyramids")
    assert pyramids.build_one(abandon=lambda: True) == job  # the collector stopping
    job.refresh_from_db()
    assert job.viewer == Job.Viewer.NONE and "left part way" in caplog.text
    build()  # its lock let go: the next builder makes it
    job.refresh_from_db()
    assert job.viewer == Job.Viewer.READY


def test_a_builder_stopping_waits_for_its_thread(alice):
    done_job(alice, noise(700, 500, seed=5))
    builder = pyramids.Builder()
    builder.stopping.set()  # as if asked to stop as it starts: it abandons at the first band
    builder.when_due()
    builder.stop()
    assert builder.thread is not None and not builder.thread.is_alive()
