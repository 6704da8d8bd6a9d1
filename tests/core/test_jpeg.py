"""A JPEG of any size written from a spool by libvips: the same scan as Pillow's whole-image save,
so the same pixels, and the profile carried."""

import io

import pytest
from PIL import Image

from imagepipe.core.jpeg import write_jpeg
from tests.images import SRGB, jpeg_scan, noise, photo


def pillow_jpeg(image: Image.Image, quality: int, icc_profile: bytes | None = None) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, **({"icc_profile": icc_profile} if icc_profile else {}))
    return out.getvalue()


def streamed(image: Image.Image, quality: int, icc_profile: bytes | None = None) -> bytes:
    out = io.BytesIO()
    write_jpeg(image, out, quality, icc_profile)
    return out.getvalue()


@pytest.mark.parametrize("mode", ["L", "RGB"])
@pytest.mark.parametrize("quality", [1, 50, 75, 90, 95, 100])
@pytest.mark.parametrize("size", [(1, 1), (513, 7), (130, 1030), (1100, 600)])
def test_the_scan_is_pillow_s_byte_for_byte(mode, quality, size):
    image = noise(size[0], size[1], mode, seed=size[0])
    ours, pillow = streamed(image, quality), pillow_jpeg(image, quality)
    assert jpeg_scan(ours) == jpeg_scan(pillow)
    assert Image.open(io.BytesIO(ours)).tobytes() == Image.open(io.BytesIO(pillow)).tobytes()


def test_a_photo_decodes_to_pillow_s_pixels_with_its_profile():
    image = photo("coffee.png")
    ours = Image.open(io.BytesIO(streamed(image, 90, SRGB)))
    assert ours.info["icc_profile"] == SRGB
    assert ours.tobytes() == Image.open(io.BytesIO(pillow_jpeg(image, 90, SRGB))).tobytes()
