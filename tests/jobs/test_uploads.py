"""Uploads are normalised once, and refused clearly, before anything is stored or published."""

import io

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient

from jobs.models import Job
from jobs.uploads import UploadError, check_pixel_data, least_bytes
from tests.core.test_normalise import SRGB
from tests.images import DATA, encoded, noise

from .factories import upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(django_user_model):
    client = APIClient()
    client.force_authenticate(django_user_model.objects.create_user("alice"))
    return client


def post(client, file, chain='[{"op": "invert"}]', **extra):
    return client.post("/api/jobs/", {"image": file, "operations": chain, **extra}, format="multipart")


def test_an_exif_rotated_jpeg_is_processed_upright(client):
    tags = Image.Exif()
    tags[0x0112] = 8  # rotate 90° counter-clockwise to display
    body = post(client, upload(noise(60, 20), "turned.jpg", "JPEG", exif=tags.tobytes())).json()
    assert (body["width"], body["height"]) == (20, 60)


def test_a_16_bit_png_becomes_grayscale(client):
    sixteen = Image.fromarray(np.full((4, 5), 40000, dtype=np.uint16))
    response = post(client, SimpleUploadedFile("deep.png", encoded(sixteen)))
    assert response.status_code == 201
    assert Job.objects.get().mode == "L"


def test_an_icc_profile_is_kept_for_colour_output_and_dropped_for_grayscale(client):
    tagged = upload(noise(20, 20), "tagged.jpg", "JPEG", icc_profile=SRGB)
    post(client, tagged)
    tagged.seek(0)
    post(client, tagged, chain='[{"op": "grayscale"}]')
    colour, gray = Job.objects.order_by("created_at")
    assert bytes(colour.icc_profile) == SRGB and bytes(gray.icc_profile) == b""


@pytest.mark.parametrize(
    "make,message",
    [
        (
            lambda: SimpleUploadedFile("float.tif", encoded(noise(4, 4, "L").convert("F"), "TIFF")),
            "cannot be processed",
        ),
        (
            lambda: SimpleUploadedFile(
                "anim.gif", encoded(noise(4, 4), "GIF", save_all=True, append_images=[noise(4, 4, seed=1)])
            ),
            "multi-frame",
        ),
        (
            lambda: SimpleUploadedFile("page.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
            "not an image",
        ),
    ],
)
def test_images_that_cannot_be_processed_are_refused(client, make, message):
    response = post(client, make())
    assert response.status_code in (400, 415)
    assert message in response.json()["error"]
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "image,extra,message",
    [
        (noise(8, 8, "RGBA"), {"output_format": "jpeg"}, "JPEG cannot carry the alpha band"),
        (noise(8, 8), {"output_format": "gif"}, "output_format must be one of png, jpeg, webp, tiff"),
        (
            noise(8, 8),
            {"output_format": "jpeg", "quality": "101"},
            "quality must be a whole number from 1 to 100",
        ),
        (noise(8, 8), {"output_format": "png", "quality": "80"}, "quality applies to jpeg and webp only"),
    ],
)
def test_impossible_output_requests_are_refused(client, image, extra, message):
    response = post(client, upload(image), **extra)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not Job.objects.exists()


def test_an_rgb_image_goes_to_jpeg_with_its_quality(client):
    response = post(client, upload(noise(8, 8)), output_format="jpeg", quality="75")
    assert response.status_code == 201
    assert (response.json()["output_format"], response.json()["output_quality"]) == ("jpeg", 75)


def test_a_chain_whose_halo_would_overflow_a_kafka_message_is_refused(client, settings):
    settings.KAFKA_MAX_MESSAGE_BYTES = 100 * 100 * 3
    blur = '[{"op": "gaussian_blur", "radius": 50}]'  # a 153-pixel halo around every tile
    response = post(client, upload(noise(400, 400)), chain=blur, tile_size="64")
    assert response.status_code == 400
    assert "message limit; choose a smaller tile_size" in response.json()["error"]
    assert post(client, upload(noise(40, 40)), chain='[{"op": "invert"}]', tile_size="64").status_code == 201


def test_an_icc_profile_over_the_limit_is_dropped_and_the_submitter_told(client, caplog):
    huge = SRGB + bytes(600 * 1024)  # a colour profile is a few KB; past 512 KiB it goes
    response = post(client, upload(noise(20, 20), "tagged.jpg", "JPEG", icc_profile=huge))
    assert response.status_code == 201
    note = (
        f"the image's {len(huge)}-byte ICC profile is over the 524288-byte limit; "
        "the result is written without it"
    )
    assert response.json()["warnings"] == [note]
    assert note in caplog.text
    assert bytes(Job.objects.get().icc_profile) == b""


def test_a_profile_within_the_limit_brings_no_warning(client):
    response = post(client, upload(noise(20, 20), "tagged.jpg", "JPEG", icc_profile=SRGB))
    assert "warnings" not in response.json()


def black(mode, size=(2048, 2048)):
    return Image.new(mode, size)


def data_file(name):
    return lambda: (DATA / name).read_bytes()


# The most compressible files each format can make: the least-bytes bound must let them all through.
COMPLETE = {
    "1-bit PNG": lambda: encoded(black("1"), "PNG", optimize=True),
    "palette PNG": lambda: encoded(black("P"), "PNG", optimize=True),
    "RGBA PNG": lambda: encoded(black("RGBA"), "PNG", compress_level=9),
    "progressive JPEG": lambda: encoded(black("L"), "JPEG", progressive=True, optimize=True, quality=1),
    "baseline JPEG": lambda: encoded(black("RGB"), "JPEG", optimize=True, quality=1),
    "JPEG of a thin strip": lambda: encoded(black("L", (60000, 8)), "JPEG", optimize=True),
    "GIF": lambda: encoded(black("P"), "GIF"),
    "camera.png": data_file("camera.png"),
    "coffee.png": data_file("coffee.png"),
    "rocket.jpg": data_file("rocket.jpg"),
}


@pytest.mark.parametrize("case", sorted(COMPLETE))
def test_a_complete_image_has_at_least_its_formats_least_bytes(case):
    data = COMPLETE[case]()
    with Image.open(io.BytesIO(data)) as image:
        assert len(data) >= least_bytes(image.format, *image.size)


def test_a_large_black_progressive_jpeg_is_accepted(client):
    file = SimpleUploadedFile("night.jpg", COMPLETE["progressive JPEG"]())
    assert post(client, file).status_code == 201


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF"])
def test_a_file_too_small_for_its_declared_size_is_refused_before_decoding(fmt):
    with pytest.raises(UploadError, match=f"pixel data is missing: a 14142×14142 {fmt} holds at least"):
        check_pixel_data(fmt, 14142, 14142, 633)
