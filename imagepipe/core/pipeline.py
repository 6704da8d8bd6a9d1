"""The tile pipeline as pure functions: cut, process, assemble.

``assemble(process(cut(image)))`` over every tile equals ``apply_chain(image)``:
the property the whole system is built around, tested directly in
``tests/core/test_pipeline.py`` and end to end through Kafka.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from PIL import Image

from .operations import Placement, Step, apply_chain, move
from .tiling import Box, TileSpec


def cut_tile(image: Image.Image, tile: TileSpec) -> Image.Image:
    """The tile's padded region: its core plus the halo."""
    return image.crop(tile.padded.as_tuple())


def final_placement(steps: Sequence[Step], box: Box, size: tuple[int, int]) -> Placement:
    """Where ``box`` of an image of ``size`` ends up after the chain's geometric steps."""
    placement = Placement(box, size)
    for step in steps:
        placement = move(step, placement)
    return placement


def output_size(steps: Sequence[Step], size: tuple[int, int]) -> tuple[int, int]:
    return final_placement(steps, Box(0, 0, *size), size).size


def process_tile(
    padded: Image.Image, steps: Sequence[Step], padded_box: Box, core: Box, size: tuple[int, int]
) -> Image.Image:
    """Run the chain on a padded tile of an image of ``size``; return the processed core only."""
    result = apply_chain(padded, steps, Placement(padded_box, size))
    moved_padded = final_placement(steps, padded_box, size).box
    moved_core = final_placement(steps, core, size).box
    if result.size != (moved_padded.width, moved_padded.height):
        raise ValueError(f"the chain turned a {padded.size} tile into {result.size}")
    return result.crop(moved_core.relative_to(moved_padded).as_tuple())


def assemble(size: tuple[int, int], mode: str, tiles: Iterable[tuple[Box, Image.Image]]) -> Image.Image:
    """Paste processed tiles, each at its box in the output, into a new image."""
    canvas = Image.new(mode, size)
    for box, tile in tiles:
        if tile.size != (box.width, box.height) or tile.mode != mode:
            raise ValueError(f"tile for {box} is {tile.mode} {tile.size}")
        canvas.paste(tile, (box.left, box.top))
    return canvas
