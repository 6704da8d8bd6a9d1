"""Tile geometry: how an image is cut into tiles, and how far each tile reaches.

A tile has a *core* (the pixels it is responsible for in the output) and a
*padded* box: the core grown by the chain's halo on every side, clipped to the
image.  Neighbourhood operations read the halo so the core comes out exactly as
it would on the whole image; the halo is then cut off again.  Clipping at the
image border is what keeps edge tiles exact too: Pillow's filters treat the
edge of whatever image they are given as *the* edge, and for an edge tile that
is the real image border.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Box:
    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.left, self.top, self.right, self.bottom)

    def relative_to(self, outer: Box) -> Box:
        """This box in the coordinates of ``outer`` (which must contain it)."""
        return Box(
            self.left - outer.left,
            self.top - outer.top,
            self.right - outer.left,
            self.bottom - outer.top,
        )


@dataclass(frozen=True)
class TileSpec:
    index: int
    col: int
    row: int
    core: Box
    padded: Box
    source: Box | None = None  # a resampling stage's: the input window its padded box is made from

    @property
    def read(self) -> Box:
        """What the tile is cut from its stage's input."""
        return self.source or self.padded


def grid_shape(width: int, height: int, tile_size: int) -> tuple[int, int]:
    """(columns, rows) of the tile grid; partial tiles at the right and bottom."""
    _check_size(width, height, tile_size)
    return -(-width // tile_size), -(-height // tile_size)


def tile_grid(width: int, height: int, tile_size: int, halo: int = 0) -> list[TileSpec]:
    """Every tile of a ``width`` x ``height`` image, row by row."""
    return list(_grid(width, height, tile_size, halo))


@lru_cache(maxsize=64)
def _grid(width: int, height: int, tile_size: int, halo: int) -> tuple[TileSpec, ...]:
    """The grid, worked out once: the dispatcher asks for a job's at every send, 16,384 tiles of it
    for the largest jobs."""
    if halo < 0:
        raise ValueError("halo must be >= 0")
    cols, rows = grid_shape(width, height, tile_size)
    tiles: list[TileSpec] = []
    for row in range(rows):
        for col in range(cols):
            left, top = col * tile_size, row * tile_size
            core = Box(left, top, min(left + tile_size, width), min(top + tile_size, height))
            padded = Box(
                max(core.left - halo, 0),
                max(core.top - halo, 0),
                min(core.right + halo, width),
                min(core.bottom + halo, height),
            )
            tiles.append(TileSpec(len(tiles), col, row, core, padded))
    return tuple(tiles)


def _check_size(width: int, height: int, tile_size: int) -> None:
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if tile_size < 1:
        raise ValueError(f"tile size must be positive, got {tile_size}")
