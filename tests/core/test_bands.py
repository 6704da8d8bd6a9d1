"""An original read in bands equals Pillow's whole-image decode, normalised, row for row: for every
kind the dispatcher reads in bands, every EXIF orientation, and crops in any order."""

import io
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from imagepipe.core import bands as bands_module
from imagepipe.core.bands import READ_ROWS, Bands, Unstreamable, orientation, streamable
from imagepipe.core.normalise import normalise
from tests.images import encoded, noise, tiled_tiff


def photo_like(width: int, height: int, mode: str, seed: int = 0) -> Image.Image:
    """Gradients under noise: what JPEG's arithmetic treats as a photo, unlike flat colour."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = (x * 255 // max(width - 1, 1) + y * 3) % 256
    bands = len(Image.new(mode, (1, 1)).getbands())
    values = np.clip(base[..., None] + rng.integers(-40, 40, (height, width, bands)), 0, 255)
    values = values.astype(np.uint8)
    return Image.frombytes(mode, (width, height), values.tobytes())


def sixteen_bit(width: int, height: int) -> Image.Image:
    values = np.random.default_rng(3).integers(0, 65536, (height, width)).astype(np.uint16)
    return Image.fromarray(values)


def kinds():
    """(name, file bytes) of every kind STREAMED names, in the encodings that matter."""
    w, h = 203, 157
    for mode in ("L", "RGB", "CMYK"):
        for subsampling in (0, 1, 2):
            for progressive in (False, True):
                name = f"jpeg-{mode}-{subsampling}-{'progressive' if progressive else 'baseline'}"
                image = photo_like(w, h, mode)
                yield (
                    name,
                    encoded(image, "JPEG", quality=90, subsampling=subsampling, progressive=progressive),
                )
    for mode in ("L", "LA", "RGB", "RGBA"):
        yield f"png-{mode}", encoded(photo_like(w, h, mode), "PNG")
        yield f"tiff-{mode}-lzw-tiled", tiled_tiff(photo_like(w, h, mode), (64, 64), "lzw")
        yield (
            f"tiff-{mode}-deflate",
            encoded(photo_like(w, h, mode), "TIFF", compression="tiff_adobe_deflate"),
        )
    yield "png-P", encoded(photo_like(w, h, "RGB").quantize(200), "PNG")
    yield "png-P-transparent", encoded(photo_like(w, h, "RGB").quantize(200), "PNG", transparency=5)
    yield "png-1", encoded(photo_like(w, h, "L").convert("1"), "PNG")
    yield "png-16", encoded(sixteen_bit(w, h), "PNG")
    yield "tiff-16", encoded(sixteen_bit(w, h), "TIFF")
    yield "tiff-1", encoded(photo_like(w, h, "L").convert("1"), "TIFF", compression="group4")
    yield "tiff-CMYK", encoded(photo_like(w, h, "CMYK"), "TIFF", compression="packbits")
    yield "tiff-jpeg", encoded(photo_like(w, h, "RGB"), "TIFF", compression="jpeg")
    yield "bigtiff", encoded(photo_like(w, h, "RGB"), "TIFF", big_tiff=True)
    yield "webp-lossy", encoded(photo_like(w, h, "RGB"), "WEBP", quality=80)
    yield "webp-RGBA", encoded(photo_like(w, h, "RGBA"), "WEBP", lossless=True)


KINDS = dict(kinds())


def header_of(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def bands_of(data: bytes) -> Bands:
    return Bands(lambda: io.BytesIO(data), header_of(data))


def whole(data: bytes) -> Image.Image:
    opened = Image.open(io.BytesIO(data))
    opened.load()
    return normalise(opened)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_band_equals_the_same_rows_of_pillows_whole_decode(name):
    data = KINDS[name]
    assert streamable(header_of(data)), name
    reference, bands = whole(data), bands_of(data)
    assert (bands.mode, bands.size) == (reference.mode, reference.size)
    width, height = reference.size
    for top in range(0, height, 50):  # tile rows with a halo of 7 rows above and below
        box = (0, max(top - 7, 0), width, min(top + 57, height))
        assert bands.crop(box).tobytes() == reference.crop(box).tobytes(), (name, box)
    assert bands.reopened == 0  # moving down the image decodes it once


def with_orientation(data_of, value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return data_of(exif.tobytes())


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
@pytest.mark.parametrize("value", range(1, 9))
def test_every_exif_orientation_is_applied_as_normalise_applies_it(fmt, value):
    image = photo_like(83, 57, "RGB", seed=value)
    if fmt == "TIFF":
        data = encoded(image, "TIFF", tiffinfo={0x0112: value})
    else:
        data = with_orientation(lambda exif: encoded(image, fmt, exif=exif, lossless=True), value)
    assert orientation(header_of(data)) == value
    reference, bands = whole(data), bands_of(data)
    assert bands.size == reference.size
    width, height = reference.size
    for top in range(0, height, 20):
        box = (3, top, width - 2, min(top + 20, height))
        assert bands.crop(box).tobytes() == reference.crop(box).tobytes(), box


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(["jpeg-RGB-2-baseline", "png-RGBA", "tiff-L-lzw-tiled", "png-16"]),
    boxes=st.lists(
        st.tuples(st.integers(0, 202), st.integers(0, 156), st.integers(1, 80), st.integers(1, 80)),
        min_size=1,
        max_size=8,
    ),
)
def test_crops_in_any_order_equal_the_whole_decode(name, boxes):
    data = KINDS[name]
    reference, bands = whole(data), bands_of(data)
    width, height = reference.size
    for left, top, w, h in boxes:
        box = (left, top, min(left + w, width), min(top + h, height))
        assert bands.crop(box).tobytes() == reference.crop(box).tobytes()


def test_a_crop_above_the_rows_held_decodes_the_file_again():
    bands = bands_of(KINDS["png-RGB"])
    bands.crop((0, 100, 10, 150))
    assert bands.reopened == 0 and bands.top == 100
    bands.crop((0, 0, 10, 10))
    assert bands.reopened == 1


def test_the_rows_of_a_crop_wait_on_disk_and_only_they():
    data = encoded(photo_like(400, 3000, "RGB"), "PNG")
    bands = bands_of(data)
    for top in range(0, 3000, 100):
        bands.crop((0, top, 400, top + 100))
        assert bands.band is not None and (bands.top, bands.band.height) == (top, 100)
        assert bands.nbytes == 0


def test_a_wide_row_of_tiles_is_never_in_memory_whole():
    width, rows = 6000, 160
    data = encoded(photo_like(width, 3 * rows, "RGB"), "PNG")
    reference, bands = whole(data), bands_of(data)
    tracemalloc.start()
    for top in range(0, 3 * rows, rows):  # rows of tiles 64 px wide with a halo of 4, in order
        box = (0, max(top - 4, 0), 64, min(top + rows + 4, 3 * rows))
        for left in range(0, width, 64):
            box = (left, box[1], min(left + 64, width), box[3])
            assert bands.crop(box).tobytes() == reference.crop(box).tobytes(), box
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # Decoded READ_ROWS rows at a time (and one crop): a row of tiles is 6000 × 168 × 3 = 3 MB.
    assert peak < 3 * width * READ_ROWS * 3 < width * rows * 3 / 2


def test_windows_are_copies_still_right_after_the_rows_they_came_from_are_let_go():
    data = encoded(photo_like(400, 3000, "RGB"), "PNG")
    reference, bands = whole(data), bands_of(data)
    windows = []
    for top in range(0, 2900, 96):  # rows of tiles 96 high with a halo of 4, as the dispatcher reads
        box = (0, max(top - 4, 0), 400, min(top + 100, 3000))
        windows.append((box, bands.window(box)))
    for box, window in windows:
        assert window.tobytes() == reference.crop(box).tobytes()


@pytest.mark.parametrize("value", [1, 2])  # upright and mirrored: read a chunk of columns at a time
def test_a_tiled_tiff_is_read_a_chunk_of_columns_at_a_time_each_pixel_pillows(monkeypatch, value):
    monkeypatch.setattr(bands_module, "CHUNK_BYTES", 1)  # a chunk of one block: 128 columns
    data = tiled_tiff(photo_like(450, 300, "RGB", seed=value), (64, 48), orientation=value)
    reference, bands = whole(data), bands_of(data)
    assert (bands.tiles, bands.chunk) == ((64, 48), 128)
    for top in range(0, 300, 64):  # rows of tiles with a halo of 5, across
        for left in range(0, 450, 100):
            box = (max(left - 5, 0), max(top - 5, 0), min(left + 105, 450), min(top + 69, 300))
            assert bands.crop(box).tobytes() == reference.crop(box).tobytes(), box
    assert bands.reopened == 0


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (encoded(noise(20, 20, "RGB"), "GIF"), "GIF"),
        (encoded(noise(20, 20, "RGB"), "BMP"), "BMP"),
        (encoded(noise(20, 20, "L"), "PNG", transparency=3), "grey PNG with a transparent value"),
        (encoded(noise(20, 20, "RGB"), "PNG", transparency=(1, 2, 3)), "RGB PNG with a transparent colour"),
        (encoded(Image.new("I", (20, 20)), "TIFF"), "32-bit TIFF"),
    ],
)
def test_kinds_not_proven_equal_are_not_read_in_bands(data, why):
    assert not streamable(header_of(data)), why
    with pytest.raises(Unstreamable):
        bands_of(data)


@pytest.mark.parametrize("name", ["png-RGB", "png-16", "jpeg-RGB-2-baseline", "jpeg-CMYK-0-progressive"])
def test_a_truncated_file_fails_as_the_files_fault(name):
    data = KINDS[name]
    bands = bands_of(data[: len(data) * 3 // 4])
    with pytest.raises(OSError, match="unable to"):
        bands.crop((0, 0, *bands.size))


def test_a_striped_tiff_cut_inside_its_pixels_fails():
    data = encoded(noise(40, 30), "TIFF")  # its directory first: the header reads whole
    bands = bands_of(data[:-500])
    with pytest.raises(OSError, match="Read error"):
        bands.crop((0, 0, 40, 30))


def test_a_failing_read_raises_the_readers_own_error():
    class Away(io.BytesIO):
        def read(self, size=-1):
            if self.tell() > 1000:
                raise ConnectionError("storage went away")
            return super().read(size)

    data = KINDS["png-RGB"]
    bands = Bands(lambda: Away(data), header_of(data))
    with pytest.raises(ConnectionError, match="storage went away"):
        bands.crop((0, 0, 203, 157))
