"""The tile pipeline as pure functions: cut, process, assemble.

``assemble(process(cut(image)))`` over every tile equals ``apply_chain(image)``:
the property the whole system is built around, tested directly in
``tests/core/test_pipeline.py`` and end to end through Kafka.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from PIL import Image

from .operations import Step, apply_chain
from .tiling import Box, TileSpec


def cut_tile(image: Image.Image, tile: TileSpec) -> Image.Image:
    """The tile's padded region: its core plus the halo."""
    return image.crop(tile.padded.as_tuple())


def process_tile(padded: Image.Image, steps: Sequence[Step], core_in_padded: Box) -> Image.Image:
    """Run the chain on a padded tile and cut the halo off again."""
    result = apply_chain(padded, steps)
    if result.size != padded.size:
        raise ValueError("operation changed the tile size; only size-preserving chains are tiled")
    return result.crop(core_in_padded.as_tuple())


def assemble(size: tuple[int, int], mode: str, tiles: Iterable[tuple[Box, Image.Image]]) -> Image.Image:
    """Paste processed tile cores into a new image of ``size`` and ``mode``."""
    canvas = Image.new(mode, size)
    for core, tile in tiles:
        if tile.size != (core.width, core.height) or tile.mode != mode:
            raise ValueError(f"tile for {core} is {tile.mode} {tile.size}")
        canvas.paste(tile, (core.left, core.top))
    return canvas
