"""deepzoom.Pyramid: a DeepZoom pyramid written from rows given a band at a time has libvips'
layout tile for tile, its full-size level is the image exactly, and the bands' heights change
nothing."""

import io
import zipfile

import numpy as np
import pytest
import pyvips
from PIL import Image

from imagepipe.core.deepzoom import BASENAME, Abandoned, Pyramid, write_pyramid
from tests.images import noise


def pyramid_of(image: Image.Image, heights: list[int] | None = None, tiles: str = "png") -> zipfile.ZipFile:
    out = io.BytesIO()
    if heights is None:
        write_pyramid(image, out, tiles)
    else:
        pixels = np.asarray(image).reshape(image.height, image.width, len(image.mode))
        pyramid, top = Pyramid(image.size, image.mode, out, tiles), 0
        for height in heights:
            pyramid.add(pixels[top : top + height])
            top += height
        pyramid.close()
    return zipfile.ZipFile(out)


def libvips_tiles(image: Image.Image, folder) -> set[str]:
    pixels = np.asarray(image).reshape(image.height, image.width, len(image.mode))
    vips = pyvips.Image.new_from_memory(pixels.tobytes(), image.width, image.height, len(image.mode), "uchar")
    vips.dzsave(str(folder / BASENAME), tile_size=254, overlap=1, suffix=".png")
    files = folder / f"{BASENAME}_files"
    return {str(path.relative_to(files)) for path in files.rglob("*.png")}


@pytest.mark.parametrize(
    ("size", "mode"),
    [((1000, 777), "RGB"), ((255, 254), "L"), ((1, 1), "RGB"), ((509, 3), "RGBA"), ((2, 600), "LA")],
)
def test_the_tiles_are_libvips_and_the_full_size_is_the_image(size, mode, tmp_path):
    image = noise(size[0], size[1], mode)
    made = pyramid_of(image)
    names = {name.split("/", 1)[1] for name in made.namelist() if name.startswith(f"{BASENAME}_files/")}
    assert names == libvips_tiles(image, tmp_path)
    top = max(int(name.split("/")[0]) for name in names)
    for name in (name for name in names if name.startswith(f"{top}/")):
        column, row = map(int, name.split("/")[1].split(".")[0].split("_"))
        left, upper = max(column * 254 - 1, 0), max(row * 254 - 1, 0)
        tile = Image.open(io.BytesIO(made.read(f"{BASENAME}_files/{name}")))
        box = (left, upper, min(left + tile.width, size[0]), min(upper + tile.height, size[1]))
        assert tile.tobytes() == image.crop(box).tobytes() and tile.size == (box[2] - left, box[3] - upper)
    assert f'<Size Height="{size[1]}" Width="{size[0]}"/>' in made.read(f"{BASENAME}.dzi").decode()


@pytest.mark.parametrize("heights", [[1] * 300, [7, 250, 1, 255, 37], [299, 1]])
def test_the_bands_heights_change_nothing(heights):
    image = noise(600, 300, "RGB", seed=4)
    whole, banded = pyramid_of(image, [300]), pyramid_of(image, heights)
    assert whole.namelist() == banded.namelist()
    assert all(whole.read(name) == banded.read(name) for name in whole.namelist())


def test_each_level_is_the_one_above_halved():
    image = noise(1000, 600, "L", seed=5)
    made = pyramid_of(image)
    level = Image.open(io.BytesIO(made.read(f"{BASENAME}_files/9/0_0.png")))  # 500 × 300 in one tile
    assert level.size == (255, 255)  # a tile and its overlap on the inner sides
    expected = image.reduce(2)  # Pillow's 2 × 2 mean, rounded as here
    assert level.tobytes() == expected.crop((0, 0, 255, 255)).tobytes()


def test_rows_short_of_the_image_fail_the_pyramid():
    pyramid = Pyramid((10, 10), "L", io.BytesIO())
    pyramid.add(np.zeros((9, 10, 1), np.uint8))
    with pytest.raises(ValueError, match="given 9 of its 10 rows"):
        pyramid.close()


def test_a_pyramid_is_abandoned_at_the_next_band_when_asked():
    asked = []

    def abandon() -> bool:
        asked.append(True)
        return len(asked) > 1  # the first band goes, then the caller wants out

    image = noise(2000, 1500, "RGB", seed=9)  # 9 MB: more than one band of rows
    with pytest.raises(Abandoned, match="abandoned at row"):
        write_pyramid(image, io.BytesIO(), "png", abandon)
    assert len(asked) == 2
