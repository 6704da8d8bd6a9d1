"""DeepZoom pyramids, written as an image's rows come (``Pyramid``).

A pyramid is one zip: ``pyramid.dzi`` (the descriptor) and ``pyramid_files/<level>/<column>_<row>``
tiles of 254 pixels with a pixel of overlap on each inner side, level 0 one pixel, the last the
full size (DeepZoom's layout, what any DeepZoom viewer reads).
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Callable
from typing import BinaryIO

import cv2
import numpy as np

from .bandfile import BandFile
from .bands import pixel_array
from .codec import as_image
from .pipeline import Pixels

TILE_SIZE, OVERLAP = 254, 1  # DeepZoom's usual: 256 with the overlap on both sides
BASENAME = "pyramid"
BAND_BYTES = 1 << 20  # rows read at a time, at most about this much (a level makes copies of them)


class Abandoned(Exception):
    """A pyramid given up part way, as its caller asked (``write_pyramid``'s ``abandon``)."""


def write_pyramid(
    pixels: Pixels,
    out: BinaryIO,
    tiles: str = "png",
    abandon: Callable[[], bool] = lambda: False,
    directory: str | None = None,
) -> None:
    """``pixels``' pyramid (L, LA, RGB or RGBA), as a zip written to ``out``, its rows read top to
    bottom about ``BAND_BYTES`` at a time (``Pyramid``, its levels' rows on disk in ``directory``):
    ``png`` tiles (exact) or ``jpg`` (quality 85); an image with alpha always gets png. Before each
    band, ``abandon()`` true gives it up (``Abandoned``): a process stopping does not wait for a
    gigapixel's view."""
    width, height = pixels.size
    pyramid = Pyramid(pixels.size, pixels.mode, out, tiles, directory)
    rows = max(1, BAND_BYTES // (width * len(pixels.mode)))
    for top in range(0, height, rows):
        if abandon():
            pyramid.abandon()
            raise Abandoned(f"abandoned at row {top} of {height}")
        pyramid.add(pixel_array(pixels, (0, top, width, min(top + rows, height))))
    pyramid.close()


class Pyramid:
    """A DeepZoom pyramid written to a zip as an image's rows are given, top to bottom, in bands of
    any height: each level keeps only the rows its next row of tiles needs (on disk, in
    ``directory``), and hands the rows it is given to the level below halved (each pixel the rounded
    mean of a 2 × 2 block, the last column or row of an odd size repeated), so the image is never
    held, nor any level of it, nor even a row of tiles. The full-size level's tiles are the given
    pixels exactly."""

    def __init__(
        self,
        size: tuple[int, int],
        mode: str,
        out: BinaryIO,
        tiles: str = "png",
        directory: str | None = None,
    ) -> None:
        self.size, self.mode = size, mode
        self.format = "png" if tiles == "png" or mode in ("LA", "RGBA") else "jpg"
        self.zip = zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, allowZip64=True)  # tiles are compressed
        top = math.ceil(math.log2(max(size)))
        self.levels = [
            _Level(
                number,
                (-(-size[0] // 2 ** (top - number)), -(-size[1] // 2 ** (top - number))),
                len(mode),
                self.tile,
                directory,
            )
            for number in range(top, -1, -1)
        ]

    def add(self, rows: np.ndarray) -> None:
        """The next rows of the image (rows, columns, bands)."""
        for level in self.levels:
            if not len(rows):
                return
            rows = level.add(rows)

    def abandon(self) -> None:
        """Give up part way: the zip closed as it stands (no descriptor), for the caller to throw
        away; left open, the zip would write its directory when collected, into a closed file."""
        self._close_levels()
        self.zip.close()

    def close(self) -> None:
        """After the last rows: the rest of every level, the descriptor, the zip's directory."""
        try:
            rows = np.zeros((0, self.size[0], len(self.mode)), np.uint8)
            for level in self.levels:
                rows = level.add(rows, last=True)
                if level.top + level.filled < level.height:
                    given = level.top + level.filled
                    raise ValueError(f"level {level.number} was given {given} of its {level.height} rows")
            self.zip.writestr(f"{BASENAME}.dzi", descriptor(self.size, self.format))
        finally:
            self._close_levels()
            self.zip.close()

    def _close_levels(self) -> None:
        for level in self.levels:
            level.close()

    def tile(self, level: int, column: int, row: int, pixels: np.ndarray) -> None:
        image = as_image(self.mode, pixels)
        encoded = io.BytesIO()
        if self.format == "png":
            image.save(encoded, "PNG", compress_level=1)
        else:
            image.save(encoded, "JPEG", quality=85)
        self.zip.writestr(f"{BASENAME}_files/{level}/{column}_{row}.{self.format}", encoded.getvalue())


class _Level:
    """One level of a ``Pyramid``: the rows of its row of tiles under way, on disk (a band file of
    a tile row's height, each tile's columns one block, so a tile is one read), and a row held back
    from the level below (halving takes rows in pairs)."""

    def __init__(
        self, number: int, size: tuple[int, int], bands: int, save: Callable[..., None], directory: str | None
    ) -> None:
        self.number, (self.width, self.height), self.save = number, size, save
        self.columns = [
            (max(column * TILE_SIZE - OVERLAP, 0), min((column + 1) * TILE_SIZE + OVERLAP, self.width))
            for column in range(-(-self.width // TILE_SIZE))
        ]
        self.band = BandFile(min(TILE_SIZE + 2 * OVERLAP, self.height), self.width, bands, directory)
        self.top = self.filled = 0  # the band holds rows [top, top + filled) of this level
        self.tile_row = 0  # the next row of tiles to write
        self.odd: np.ndarray | None = None  # the last row given, not yet halved for the level below

    def add(self, rows: np.ndarray, last: bool = False) -> np.ndarray:
        """Take the level's next rows and write the rows of tiles they complete; the rows for the
        level below, halved (``last``: the level's last rows, an odd one halved with itself)."""
        given = 0
        while given < len(rows):
            bottom = min((self.tile_row + 1) * TILE_SIZE + OVERLAP, self.height)  # the tile row's
            taken = min(len(rows) - given, bottom - self.top - self.filled)
            self._put(rows[given : given + taken], self.filled)
            self.filled, given = self.filled + taken, given + taken
            if self.top + self.filled == bottom:
                self._write_row()
        return self._halved(rows, last)

    def _put(self, rows: np.ndarray, at: int) -> None:
        for left, right in self.columns:
            self.band.write(left, at, rows[:, left:right])

    def _write_row(self) -> None:
        """Write the row of tiles the band holds, then keep only its last rows: the overlap the
        next row of tiles starts with."""
        for column, (left, right) in enumerate(self.columns):
            self.save(self.number, column, self.tile_row, self.band.read(0, self.filled, left, right))
        self.tile_row += 1
        keep = min(self.tile_row * TILE_SIZE - OVERLAP - self.top, self.filled)  # the next row's first
        self._put(self.band.read(keep, self.filled), 0)
        self.top, self.filled = self.top + keep, self.filled - keep

    def close(self) -> None:
        self.band.close()

    def _halved(self, rows: np.ndarray, last: bool) -> np.ndarray:
        """Rows in pairs, each pair and each pair of columns averaged (rounded); the odd row out
        waits for the next rows, or at the end is paired with itself."""
        if self.odd is not None and len(rows):
            pairs = [_half(np.concatenate([self.odd, rows[:1]]))]
            self.odd, rows = None, rows[1:]
        else:
            pairs = []
        whole = len(rows) // 2 * 2
        if whole:
            pairs.append(_half(rows[:whole]))
        if whole < len(rows):
            self.odd = rows[whole:].copy()
        if last and self.odd is not None:
            pairs.append(_half(np.concatenate([self.odd, self.odd])))
            self.odd = None
        if not pairs:
            return rows[:0, : -(-self.width // 2)]
        return pairs[0] if len(pairs) == 1 else np.concatenate(pairs)


def _half(rows: np.ndarray) -> np.ndarray:
    """An even number of rows halved each way: each 2 × 2 block's mean, rounded (OpenCV's area
    resize at exactly a half: (a + b + c + d + 2) >> 2, what Pillow's ``reduce(2)`` gives); an odd
    last column is averaged with itself."""
    height, width, bands = rows.shape
    even = width // 2 * 2
    half = np.empty((height // 2, -(-width // 2), bands), np.uint8)
    if even:
        shrunk = cv2.resize(rows[:, :even], (even // 2, height // 2), interpolation=cv2.INTER_AREA)
        half[:, : even // 2] = shrunk.reshape(height // 2, even // 2, bands)
    if even < width:
        last = rows[:, -1].astype(np.uint16)
        half[:, -1] = (last[0::2] + last[1::2] + 1) >> 1
    return half


def descriptor(size: tuple[int, int], tile_format: str) -> str:
    """The pyramid's ``.dzi``: what any DeepZoom viewer reads first."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" Format="{tile_format}" '
        f'Overlap="{OVERLAP}" TileSize="{TILE_SIZE}">\n'
        f'  <Size Height="{size[1]}" Width="{size[0]}"/>\n</Image>\n'
    )
