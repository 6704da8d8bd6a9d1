"""imagepipe.core.tiff: a tiled TIFF written a row of tiles at a time reads back as the same pixels
in Pillow and libvips, BigTIFF past 4 GB, with its colour profile."""

import io

import numpy as np
import pytest
import pyvips
from hypothesis import example, given, settings
from hypothesis import strategies as st
from PIL import Image

from imagepipe.core import tiff
from tests.images import SRGB, Cropped, noise


def written(image, *options) -> bytes:
    out = io.BytesIO()
    tiff.write_tiff(image, out, *options)
    return out.getvalue()


@settings(max_examples=40, deadline=None)
@given(
    mode=st.sampled_from(["L", "LA", "RGB", "RGBA"]),
    width=st.integers(1, 1100),
    height=st.integers(1, 1100),
    seed=st.integers(0, 2**16),
)
@example(mode="RGB", width=100, height=100, seed=0)  # a 512² tile here: libvips refused the file
@example(mode="L", width=1, height=1, seed=0)
def test_any_image_comes_back_whole_in_pillow_and_libvips(mode, width, height, seed):
    image = noise(width, height, mode, seed)
    data = written(image)
    back = Image.open(io.BytesIO(data))
    assert (back.mode, back.size, back.tobytes()) == (mode, image.size, image.tobytes())
    # libvips refuses tiles much larger than the image: a small one's are as small as TIFF allows.
    assert pyvips.Image.new_from_buffer(data, "").write_to_memory() == image.tobytes()


@pytest.mark.parametrize("mode", ["L", "RGBA"])
def test_past_4_gb_it_is_a_bigtiff_that_pillow_and_libvips_read(mode, monkeypatch):
    monkeypatch.setattr(tiff, "BIG", 0)  # every image "past" the limit
    image = noise(700, 600, mode)
    data = written(image)
    assert data[:4] == b"II+\x00"
    assert Image.open(io.BytesIO(data)).tobytes() == image.tobytes()
    read = pyvips.Image.new_from_buffer(data, "")
    assert np.frombuffer(read.write_to_memory(), np.uint8).tobytes() == image.tobytes()


def test_the_colour_profile_is_carried():
    assert Image.open(io.BytesIO(written(noise(8, 8), SRGB))).info["icc_profile"] == SRGB


def test_it_is_read_a_row_of_tiles_at_a_time():
    pixels = Cropped(noise(1200, 1100))
    assert Image.open(io.BytesIO(written(pixels))).tobytes() == pixels.image.tobytes()
    assert pixels.boxes == [(0, 0, 1200, 512), (0, 512, 1200, 1024), (0, 1024, 1200, 1100)]
