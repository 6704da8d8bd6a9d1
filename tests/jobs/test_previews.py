"""jobs.previews and the preview API: previews are made by the pipeline and only served by requests;
a preview not made yet is a 404 the page shows as a placeholder, and no request decodes an image."""

import io

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from imagepipe.core.normalise import normalise
from jobs import actions, previews
from jobs.models import Job
from pipeline.collector import record_result
from pipeline.stages import stage_input
from tests.images import SRGB, decoding_watched, noise

from .factories import make_job, results_for

pytestmark = pytest.mark.django_db


def image_of(response) -> Image.Image:
    return Image.open(io.BytesIO(response.content))


def original_of(job) -> Image.Image:
    with job.original.open("rb") as handle:
        return normalise(Image.open(handle))


def test_a_preview_not_made_yet_is_a_404_and_nothing_is_decoded(client, alice, media_root):
    job = make_job(alice, noise(400, 300))
    client.force_login(alice)
    with decoding_watched() as decodes:
        response = client.get(f"/api/jobs/{job.pk}/preview/original/?size=160")
    assert decodes == []
    assert response.status_code == 404
    assert response.json() == {"error": "the original's preview is not ready yet"}
    assert response["Cache-Control"] == "no-store"  # the page asks again once the job has started


def test_a_done_job_whose_result_preview_is_gone_is_not_decoded_by_the_request(client, alice, media_root):
    job = make_job(alice, noise(64, 48), tile_size=32)
    for value in results_for(job, noise(64, 48)):
        record_result(value)
    for name in previews.stored_names(job.pk):
        default_storage.delete(name)
    client.force_login(alice)
    with decoding_watched() as decodes:
        response = client.get(f"/api/jobs/{job.pk}/preview/result/?size=1000")
    assert decodes == []
    assert response.status_code == 404
    assert response.json() == {"error": "the result's preview is not ready yet"}


def test_stored_previews_are_served_to_the_owner_and_staff_only(client, alice, bob, staff):
    job = make_job(alice, noise(400, 300))
    assert previews.store(job, "original", original_of(job))
    client.force_login(bob)
    assert client.get(f"/api/jobs/{job.pk}/preview/original/").status_code == 404
    for user in (alice, staff):
        client.force_login(user)
        response = client.get(f"/api/jobs/{job.pk}/preview/original/?size=160")
        assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
        assert image_of(response).size == (160, 120)
        assert image_of(client.get(f"/api/jobs/{job.pk}/preview/original/?size=1000")).size == (400, 300)
    assert client.get(f"/api/jobs/{job.pk}/preview/result/").status_code == 409  # queued: no result
    assert client.get(f"/api/jobs/{job.pk}/preview/original/?size=5").status_code == 400


def test_an_image_with_alpha_has_png_previews_and_none_carries_a_profile(client, alice):
    job = make_job(alice, noise(64, 48, "RGBA"))
    image = original_of(job)
    image.info["icc_profile"] = SRGB
    previews.store(job, "original", image)
    client.force_login(alice)
    response = client.get(f"/api/jobs/{job.pk}/preview/original/?size=160")
    assert response["Content-Type"] == "image/png"
    shown = image_of(response)
    assert shown.mode == "RGBA" and "icc_profile" not in shown.info


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
@pytest.mark.parametrize("heights", [[1601], [533, 1, 2, 700, 365], [1] * 40 + [1561]])
def test_reducing_a_band_at_a_time_is_exactly_reducing_the_whole(mode, heights):
    image = noise(999, 1601, mode)  # 1601 rows at a factor of 3: bands cut across its blocks
    reducer = previews.Reducer(image.size, mode, 266)
    assert reducer.factor == 3
    top = 0
    for height in heights:
        reducer.add(image.crop((0, top, image.width, top + height)))
        top += height
    assert reducer.out.tobytes() == image.reduce(3).tobytes()


def test_a_reducer_short_of_rows_says_so():
    reducer = previews.Reducer((10, 10), "L", 2)
    reducer.add(noise(10, 9, "L"))
    with pytest.raises(ValueError, match="9 of the image's 10 rows were given"):
        reducer.fitted()


def test_each_size_fits_its_bound_whatever_the_images_shape():
    wide, tall = noise(5000, 1000), noise(300, 2400)
    assert previews.fitted(wide, 1000).size == (1000, 200)
    assert previews.fitted(tall, 160).size == (20, 160)
    assert previews.fitted(noise(90, 60), 160).size == (90, 60)  # never enlarged


def test_a_jpeg_is_read_for_its_previews_at_a_fraction_of_its_size(alice):
    big = Image.linear_gradient("L").resize((4000, 3000)).convert("RGB")
    job = make_job(alice, big, fmt="JPEG")
    with decoding_watched() as decodes:
        assert previews.from_file(job, "original")
    assert ("decoder", "jpeg", (2, 0)) in decodes  # libjpeg scales by 2 as it decodes
    data, _ = previews.stored_preview(job, "original", 1000)
    assert Image.open(io.BytesIO(data)).size == (1000, 750)


def test_previews_stored_after_their_job_was_deleted_go_too(
    alice, media_root, django_capture_on_commit_callbacks
):
    job = make_job(alice, noise(64, 48))
    image = original_of(job)
    with django_capture_on_commit_callbacks(execute=True):
        actions.delete(Job.objects.get(pk=job.pk))
    assert not previews.store(job, "original", image)  # a dispatcher that decoded it before the delete
    assert previews.stored_names(job.pk) == []


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_job_whose_original_carries_a_large_icc_profile_has_small_previews(client, alice, fmt):
    # An RGB profile of 2 MB: over Pillow's default 1 MB for a PNG's compressed chunks.
    profile = (bytes(16) + b"RGB " + bytes(range(256)) * 8192)[: 2 * 1024 * 1024]
    job = make_job(alice, noise(64, 48), tile_size=32, fmt=fmt, icc=profile)
    original, _ = stage_input(job, 0)  # the dispatcher makes the original's previews
    for value in results_for(job, original):
        record_result(value)  # the collector, the result's
    job.refresh_from_db()
    assert job.status == Job.Status.DONE
    client.force_login(alice)
    for which in ("original", "result"):
        response = client.get(f"/api/jobs/{job.pk}/preview/{which}/?size=160")
        assert response.status_code == 200, response.content[:200]
        preview = image_of(response)
        assert preview.size == (64, 48) and "icc_profile" not in preview.info
        assert len(response.content) < 50_000  # a thumbnail, not a carrier for the profile
