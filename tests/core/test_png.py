"""imagepipe.core.png: a PNG deflated in strips on several threads is a valid PNG of the same pixels."""

import io
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from imagepipe.core.png import adler32_combine, deflate_band, encode_png, png_file, rows_of, write_png
from tests.images import SRGB, Cropped, noise, photo

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
    streamed=st.booleans(),
)
def test_any_image_comes_back_whole(mode, width, height, level, threads, strip_bytes, seed, streamed):
    """Encoded at once, or written band by band as its rows are read (``write_png``)."""
    image = noise(width, height, mode, seed)
    data = (
        written(image, level, None, threads, strip_bytes)
        if streamed
        else encode_png(image, level, None, threads, strip_bytes)
    )
    assert same_pixels(Image.open(io.BytesIO(data)), image)
    Image.open(io.BytesIO(data)).verify()  # every chunk's CRC
    # One zlib stream, its Adler-32 right (zlib checks it), holding a filter byte and each row.
    assert len(zlib.decompress(idat(data))) == height * (1 + width * len(mode))


@pytest.mark.parametrize("picture", ["coffee.png", "camera.png", "rocket.jpg"])
def test_a_photo_in_many_strips_comes_back_whole_and_about_as_small_as_pillows(picture):
    image = photo(picture).convert("RGB")
    data = encode_png(image, 1, None, 3, strip_bytes=50_000)
    assert same_pixels(Image.open(io.BytesIO(data)), image)
    pillows = io.BytesIO()
    image.save(pillows, format="PNG", compress_level=1)
    assert len(data) < 1.25 * len(pillows.getvalue())


def written(image, *options) -> bytes:
    out = io.BytesIO()
    write_png(image, out, *options)
    return out.getvalue()


@pytest.mark.parametrize("encoder", [encode_png, written])
def test_the_colour_profile_is_carried(encoder):
    data = encoder(noise(8, 8), 1, SRGB)
    assert Image.open(io.BytesIO(data)).info["icc_profile"] == SRGB


def test_a_png_written_band_by_band_reads_its_rows_a_band_at_a_time():
    pixels = Cropped(noise(50, 1000))
    data = written(pixels, 1, None, 2, 1500)  # 10 rows a band
    assert same_pixels(Image.open(io.BytesIO(data)), pixels.image)
    rows = [bottom - top for _, top, _, bottom in pixels.boxes]
    assert set(rows) == {10} and len(rows) == 100


def test_a_mode_png_results_never_have_is_refused():
    with pytest.raises(ValueError, match="mode P"):
        encode_png(noise(4, 4).convert("P"))


@settings(max_examples=100, deadline=None)
@given(
    mode=st.sampled_from(["L", "LA", "RGB", "RGBA"]),
    width=st.integers(1, 40),
    height=st.integers(1, 40),
    data=st.data(),
)
def test_bands_deflated_in_any_order_make_the_image(mode, width, height, data):
    """What the collector does: each band deflated when its tiles are in, the file joined at the end."""
    image = noise(width, height, mode, data.draw(st.integers(0, 2**16)))
    cuts = sorted(data.draw(st.sets(st.integers(1, height - 1), max_size=6)) if height > 1 else set())
    tops, rows = [0, *cuts], rows_of(image)
    spans = list(zip(tops, [*cuts, height], strict=True))
    bands = {}
    for top, bottom in data.draw(st.permutations(spans)):
        bands[top] = deflate_band(rows[top:bottom], 1, last=bottom == height)
    file = png_file(image.size, mode, [bands[top] for top in tops])
    assert same_pixels(Image.open(io.BytesIO(file)), image)


@given(first=st.binary(max_size=300), second=st.binary(max_size=300))
def test_adler32_combines_as_zlib_computes_it_on_the_joined_bytes(first, second):
    joined = adler32_combine(zlib.adler32(first), zlib.adler32(second), len(second))
    assert joined == zlib.adler32(first + second)


def test_adler32_combines_long_strings_of_extreme_bytes():
    first, second = b"\xff" * 100_000, b"\xff" * 5_553 + b"\x00" * 70_000
    assert adler32_combine(zlib.adler32(first), zlib.adler32(second), len(second)) == zlib.adler32(
        first + second
    )
