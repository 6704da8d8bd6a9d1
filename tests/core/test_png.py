"""imagepipe.core.png: a PNG deflated in strips on several threads is a valid PNG of the same pixels."""

import io
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from imagepipe.core.png import encode_png, filtered_rows
from tests.images import SRGB, noise, photo

from .tiled import same_pixels


def idat(data: bytes) -> bytes:
    """The pixels' zlib stream: every IDAT chunk's data, in order."""
    found, at = b"", 8
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        found += data[at + 8 : at + 8 + length] if kind == b"IDAT" else b""
        at += 12 + length
    return found


@settings(max_examples=150, deadline=None)
@given(
    mode=st.sampled_from(["L", "LA", "RGB", "RGBA"]),
    width=st.integers(1, 60),
    height=st.integers(1, 60),
    level=st.integers(0, 9),
    threads=st.integers(1, 4),
    strip_bytes=st.integers(1, 400),  # from a row a strip to the whole image in one
    seed=st.integers(0, 2**16),
)
def test_any_image_comes_back_whole(mode, width, height, level, threads, strip_bytes, seed):
    image = noise(width, height, mode, seed)
    data = encode_png(image, level, None, threads, strip_bytes)
    assert same_pixels(Image.open(io.BytesIO(data)), image)
    Image.open(io.BytesIO(data)).verify()  # every chunk's CRC
    # One zlib stream, its Adler-32 right (zlib checks it), holding exactly the filtered rows.
    assert zlib.decompress(idat(data)) == filtered_rows(image).tobytes()


@pytest.mark.parametrize("picture", ["coffee.png", "camera.png", "rocket.jpg"])
def test_a_photo_in_many_strips_comes_back_whole_and_about_as_small_as_pillows(picture):
    image = photo(picture).convert("RGB")
    data = encode_png(image, 1, None, 3, strip_bytes=50_000)
    assert same_pixels(Image.open(io.BytesIO(data)), image)
    pillows = io.BytesIO()
    image.save(pillows, format="PNG", compress_level=1)
    assert len(data) < 1.25 * len(pillows.getvalue())


def test_the_colour_profile_is_carried():
    data = encode_png(noise(8, 8), icc_profile=SRGB)
    assert Image.open(io.BytesIO(data)).info["icc_profile"] == SRGB


def test_a_mode_png_results_never_have_is_refused():
    with pytest.raises(ValueError, match="mode P"):
        encode_png(noise(4, 4).convert("P"))
