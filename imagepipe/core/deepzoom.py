"""DeepZoom pyramids and the raw spool both libvips encoders read: pixels of any size written a
band of rows at a time to a file, opened by libvips as an image it reads in a stream.

A pyramid is one zip: ``pyramid.dzi`` (the descriptor) and ``pyramid_files/<level>/<column>_<row>``
tiles of 254 pixels with a pixel of overlap on each inner side, level 0 one pixel, the last the
full size (DeepZoom's layout, what any DeepZoom viewer reads).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import pyvips

from .pipeline import Pixels, row_bands

TILE_SIZE, OVERLAP = 254, 1  # DeepZoom's usual: 256 with the overlap on both sides
BASENAME = "pyramid"
BAND_BYTES = 4 << 20  # rows spooled at a time, at most about this much
INTERPRETATION = {"L": "b-w", "LA": "b-w", "RGB": "srgb", "RGBA": "srgb"}


@contextmanager
def spooled(pixels: Pixels, spool: str | None = None) -> Iterator[pyvips.Image]:
    """``pixels`` (L, LA, RGB or RGBA) as a libvips image over a raw file in the folder ``spool``
    (the system's temporary folder if None), written a band of rows at a time; gone after."""
    width, height = pixels.size
    bands = len(pixels.mode)
    with tempfile.NamedTemporaryFile(dir=spool, suffix=".raw") as raw:
        for band in row_bands(pixels, max(1, BAND_BYTES // (width * bands))):
            raw.write(band.tobytes())
        raw.flush()
        image = pyvips.Image.rawload(raw.name, width, height, bands)
        yield image.copy(interpretation=INTERPRETATION[pixels.mode])


def write_pyramid(image: pyvips.Image, out: BinaryIO, tiles: str = "png", spool: str | None = None) -> None:
    """``image``'s pyramid, as a zip written to ``out``: ``png`` tiles (exact) or ``jpg`` (quality
    85); an image with alpha always gets png."""
    suffix = ".png" if tiles == "png" or image.hasalpha() else ".jpg[Q=85]"
    with tempfile.TemporaryDirectory(dir=spool) as folder:
        made = Path(folder) / BASENAME
        image.dzsave(str(made), container="zip", tile_size=TILE_SIZE, overlap=OVERLAP, suffix=suffix)
        zipped = made if made.exists() else made.with_suffix(".zip")
        with zipped.open("rb") as handle:
            shutil.copyfileobj(handle, out, 8 << 20)
