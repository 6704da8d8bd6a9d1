"""A band of an image's rows kept on disk, not in memory: the dispatcher's rows of the original it
is cutting tiles from (``bands.Bands``), the collector's rows of a PNG result waiting for its
tiles (``pipeline.canvas``).

The band's columns are split in blocks, each block's rows one after the other (a block takes its
place in the file when first written), so what a tile needs (some rows of a few blocks) and what
a strip needs (some rows of every block) are each one read a block. Blocks may overlap by a few
columns (a pyramid's tiles do): a tile is then one read. The file
has no name: it goes with its process, however that ends. Its pages sit in the system's page cache
(or on disk, under memory pressure), not in the process: memory holds only the piece being moved.
"""

from __future__ import annotations

import bisect
import os
import tempfile

import numpy as np


class BandFile:
    """Rows ``[0, height)`` of an image ``width`` wide, of ``bands`` bytes a pixel, on disk.

    ``write`` puts rows of one block (the columns from ``left``, as wide as the pixels written: the
    same each time for one block); ``read`` returns any rows of any columns written. A ``ring``
    takes any row of the image: row ``r`` is kept in place ``r % height``, so the last ``height``
    rows written are there, and a band moving down the image keeps its rows where they are.
    """

    def __init__(
        self, height: int, width: int, bands: int, directory: str | None = None, ring: bool = False
    ) -> None:
        self.height, self.width, self.bands, self.ring = height, width, bands, ring
        self.file = tempfile.TemporaryFile(dir=directory)
        self.scratch = np.empty(0, np.uint8)  # what a block is read into: reused, not allocated each read
        self.lefts: list[int] = []  # the blocks written, by their first column, in order...
        self.blocks: dict[int, tuple[int, int]] = {}  # ... and where each ends, where it starts in the file
        self.end = 0  # of the file's blocks

    def _runs(self, top: int, rows: int) -> list[tuple[int, int, int]]:
        """Where rows ``[top, top + rows)`` are kept: (first of them, place, how many) each run."""
        if not self.ring:
            return [(0, top, rows)]
        place = top % self.height
        first = min(rows, self.height - place)
        return [(0, place, first)] + ([(first, 0, rows - first)] if rows > first else [])

    def write(self, left: int, top: int, pixels: np.ndarray) -> None:
        """``pixels`` (rows, columns, bands) as rows ``top``… of the block from column ``left``."""
        rows, columns = pixels.shape[:2]
        right, start = self.blocks.get(left, (left + columns, self.end))
        inside = rows <= self.height if self.ring else 0 <= top and top + rows <= self.height
        if right != left + columns or not (inside and right <= self.width):
            raise ValueError(f"{rows}×{columns} pixels at ({left}, {top}) do not fit the band's block")
        if left not in self.blocks:
            self.blocks[left] = (right, start)
            self.end += columns * self.height * self.bands
            bisect.insort(self.lefts, left)
        block = np.ascontiguousarray(pixels)
        for first, place, count in self._runs(top, rows):
            offset = start + place * columns * self.bands
            if (
                os.pwrite(self.file.fileno(), block[first : first + count].data, offset)
                != count * columns * self.bands
            ):
                raise OSError(f"the band file took less than a block at {offset}: is the disk full?")

    def read(self, top: int, bottom: int, left: int = 0, right: int | None = None) -> np.ndarray:
        """Rows ``[top, bottom)`` of columns ``[left, right)`` (all of them by default) as an array
        (rows, columns, bands); each column must have been written, in some block (blocks may
        overlap: a column is read from the first that has it)."""
        right = self.width if right is None else right
        out = np.empty((bottom - top, right - left, self.bands), np.uint8)
        covered = left  # the columns before it are in ``out``
        for start in self.lefts[max(bisect.bisect_right(self.lefts, left) - 1, 0) :]:
            end, at = self.blocks[start]
            if covered >= right or start > covered:
                break
            if end <= covered:
                continue
            shape = (bottom - top, end - start, self.bands)
            size = shape[0] * shape[1] * shape[2]
            if len(self.scratch) < size:
                self.scratch = np.empty(size, np.uint8)
            block = self.scratch[:size].reshape(shape)
            for first, place, count in self._runs(top, bottom - top):
                offset = at + place * (end - start) * self.bands
                part = block[first : first + count]
                if os.preadv(self.file.fileno(), [part.data], offset) != part.nbytes:
                    raise OSError(f"the band file is shorter than its blocks at {offset}")
            upto = min(end, right)
            out[:, covered - left : upto - left] = block[:, covered - start : upto - start]
            covered = upto
        if covered < right:
            raise ValueError(f"columns {covered}… of the band were never written")
        return out

    def close(self) -> None:
        self.file.close()
