"""Every upload becomes upright L, LA, RGB or RGBA before tiling."""

import io
from typing import cast

import numpy as np
import pytest
from PIL import Image, ImageOps

from imagepipe.core.normalise import NormaliseError, normalise, normalised_shape, output_profile
from tests.images import SRGB, decoding_watched, noise


def reopened(image, fmt, **options):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    opened = Image.open(io.BytesIO(buffer.getvalue()))
    opened.load()
    return opened


def test_exif_orientation_is_applied_and_exif_dropped():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    photo = reopened(noise(40, 20), "JPEG", exif=exif.tobytes())
    upright = normalise(photo)
    assert upright.size == (20, 40)
    assert upright.tobytes() == ImageOps.exif_transpose(photo).tobytes()
    assert "exif" not in upright.info


def test_a_cmyk_jpeg_becomes_rgb():
    cmyk = reopened(noise(16, 8, "CMYK"), "JPEG")
    assert cmyk.mode == "CMYK"
    rgb = normalise(cmyk)
    assert rgb.mode == "RGB" and rgb.tobytes() == cmyk.convert("RGB").tobytes()


def test_a_16_bit_png_is_scaled_to_8_bits_with_rounding():
    values = np.array([[0, 128, 129, 385, 386, 65535, 32896, 1000]], dtype=np.uint16)
    sixteen = reopened(Image.fromarray(values), "PNG")
    assert sixteen.mode.startswith("I")
    gray = normalise(sixteen)
    assert gray.mode == "L"
    assert list(gray.tobytes()) == [(int(v) + 128) // 257 for v in values[0]] == [0, 0, 1, 1, 2, 255, 128, 4]


def test_a_palette_gif_with_transparency_becomes_rgba():
    palette = Image.new("P", (4, 2), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.putpixel((0, 0), 0)
    gif = reopened(palette, "GIF", transparency=0)
    rgba = normalise(gif)
    assert rgba.mode == "RGBA"
    assert cast(tuple[int, ...], rgba.getpixel((0, 0)))[3] == 0 and rgba.getpixel((1, 0)) == (255, 0, 0, 255)


def test_a_palette_image_without_transparency_becomes_rgb():
    assert normalise(noise(6, 6).convert("P")).mode == "RGB"


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_the_four_working_modes_are_kept(mode):
    image = reopened(noise(5, 3, mode), "PNG")
    assert normalise(image).tobytes() == image.tobytes()


@pytest.mark.parametrize(
    "mode,expected",
    [("1", "L"), ("PA", "RGBA"), ("YCbCr", "RGB"), ("LAB", "RGB"), ("HSV", "RGB"), ("RGBX", "RGB")],
)
def test_other_modes_are_converted(mode, expected):
    image = noise(5, 3).convert(mode) if mode not in ("PA", "LAB", "HSV") else Image.new(mode, (5, 3))
    assert normalise(image).mode == expected


@pytest.mark.parametrize(
    "image", [Image.new("F", (3, 3), 0.5), Image.new("I", (2, 2), -5), Image.new("I", (2, 2), 70000)]
)
def test_float_and_out_of_range_images_are_refused(image):
    with pytest.raises(NormaliseError, match="cannot be processed"):
        normalise(image)


def test_an_icc_profile_is_kept_only_while_the_colour_space_stays():
    tagged = normalise(reopened(noise(8, 8), "JPEG", icc_profile=SRGB))
    profile = tagged.info["icc_profile"]
    assert profile == SRGB
    assert output_profile(profile, "RGB") == SRGB
    assert output_profile(profile, "RGBA") == SRGB
    assert output_profile(profile, "L") is None  # grayscale output: an RGB profile no longer fits


def opened(image, fmt, **options):
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return Image.open(io.BytesIO(buffer.getvalue()))


def turned(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    return {"exif": exif.tobytes()}


@pytest.mark.parametrize(
    "image,fmt,options",
    [
        *[(noise(40, 20, mode), "JPEG", turned(o)) for mode in ("L", "RGB") for o in range(1, 9)],
        (noise(40, 20).convert("CMYK"), "JPEG", {}),
        *[(noise(30, 10, mode), "PNG", {}) for mode in ("L", "LA", "RGB", "RGBA")],
        (noise(30, 10).convert("1"), "PNG", {}),
        (noise(30, 10).convert("P"), "PNG", {}),
        (noise(30, 10).convert("P"), "PNG", {"transparency": 3}),
        (noise(30, 10).convert("P"), "GIF", {}),
        (Image.new("I;16", (30, 10), 4000), "PNG", {}),
        (noise(30, 10), "PNG", turned(8)),  # Pillow writes eXIf ahead of the pixels
        *[(noise(40, 20), "TIFF", turned(o)) for o in (1, 6, 8)],  # Pillow gives a TIFF's turned size
        *[(noise(40, 20), "WEBP", {**turned(o), "lossless": True}) for o in (1, 6)],
        (noise(30, 10, "RGBA"), "WEBP", {}),
        (noise(30, 10, "LA"), "TIFF", {}),
        (noise(30, 10), "BMP", {}),
    ],
)
def test_the_shape_read_from_the_header_is_the_shape_normalise_gives(image, fmt, options):
    header = opened(image, fmt, **options)
    expected = normalise(opened(image, fmt, **options))
    with decoding_watched() as decodes:
        assert normalised_shape(header) == (expected.mode, expected.size)
    assert decodes == []
