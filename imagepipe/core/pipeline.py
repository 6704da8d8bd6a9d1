"""The tile pipeline as pure functions: cut, process, assemble.

``assemble(process(cut(image)))`` over every tile equals ``apply_chain(image)``:
the property the whole system is built around, tested directly in
``tests/core/test_pipeline.py`` and end to end through Kafka.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Protocol

from PIL import Image

from . import statistics
from .chain import apply_chain, colour_bands, global_table, move, needed_stat, split_stages
from .operations import Colour, Placement, Step, chain_halo, chain_output_mode, parse_chain, without_alpha
from .resample import Resize
from .tiling import Box, TileSpec, grid_shape, tile_grid

RESAMPLED_TILE_MIN = 16  # pixels: a resampling stage's tiles are no smaller (a window grows with the scale)


class Pixels(Protocol):
    """A full-size image read a part at a time: an Image, ``Bands``, or the collector's canvas."""

    @property
    def mode(self) -> str: ...

    @property
    def size(self) -> tuple[int, int]: ...

    def crop(self, box: tuple[int, int, int, int]) -> Image.Image: ...


def row_bands(pixels: Pixels, rows: int) -> Iterator[Image.Image]:
    """The pixels from top to bottom, ``rows`` rows at a time."""
    width, height = pixels.size
    for top in range(0, height, rows):
        yield pixels.crop((0, top, width, min(top + rows, height)))


def cut_tile(image: Pixels, tile: TileSpec) -> Image.Image:
    """What the tile is made from: its core plus the halo, or a resampling stage's window."""
    return image.crop(tile.read.as_tuple())


def stage_grid(stage: Sequence[Step], size: tuple[int, int], tile_size: int) -> list[TileSpec]:
    """A stage's tiles over an image of ``size``. A stage that starts by resampling is cut over
    the resampled image, at a tile size shrunk by the scale (so each tile's window in the input is
    about ``tile_size`` across), each tile reading the window of the input its pixels are made
    from."""
    if stage[0].op.kind != "resample":
        return tile_grid(*size, tile_size, chain_halo(stage))
    key = json.dumps([step.to_dict() for step in stage])
    return list(_resampled_grid(key, size, tile_size))


def stage_tile_count(stage: Sequence[Step], size: tuple[int, int], tile_size: int) -> int:
    """How many tiles ``stage_grid`` cuts, from the geometry alone."""
    if stage[0].op.kind != "resample":
        return math.prod(grid_shape(*size, tile_size))
    plan = stage[0].resize(size)
    return math.prod(grid_shape(*plan.output_size, resampled_tile_size(plan, tile_size)))


def resampled_tile_size(plan: Resize, tile_size: int) -> int:
    """A resampling stage's tiles: the job's tile size over the scale, at least RESAMPLED_TILE_MIN."""
    out = plan.output_size
    scale = max(1.0, *(plan.reduced[axis] * plan.factor[axis] / out[axis] for axis in (0, 1)))
    return max(min(tile_size, RESAMPLED_TILE_MIN), int(tile_size / scale))


@lru_cache(maxsize=64)
def _resampled_grid(stage: str, size: tuple[int, int], tile_size: int) -> tuple[TileSpec, ...]:
    steps = parse_chain(json.loads(stage))
    plan = steps[0].resize(size)
    grid = tile_grid(*plan.output_size, resampled_tile_size(plan, tile_size), chain_halo(steps[1:]))
    return tuple(replace(spec, source=plan.source(spec.padded)) for spec in grid)


def final_placement(steps: Sequence[Step], box: Box, size: tuple[int, int]) -> Placement:
    """Where ``box`` of an image of ``size`` ends up after the chain's geometric steps."""
    placement = Placement(box, size)
    for step in steps:
        placement = move(step, placement)
    return placement


def output_size(steps: Sequence[Step], size: tuple[int, int]) -> tuple[int, int]:
    return final_placement(steps, Box(0, 0, *size), size).size


def process_tile(
    padded: Image.Image,
    steps: Sequence[Step],
    padded_box: Box,
    core: Box,
    size: tuple[int, int],
    table: list[int] | None = None,
    kernels: Mapping[str, Colour] | None = None,
    source: Box | None = None,
) -> Image.Image:
    """Run a stage on a padded tile of an image of ``size``; return the processed core only.

    ``table`` is the lookup table of the stage's leading global step, if it has one; ``kernels``
    the faster routes to use (``kernels.ENGINES``). A stage that starts by resampling is given the
    window ``source`` of its input instead, and resamples it to the padded box first.
    """
    if steps and steps[0].op.kind == "resample":
        if source is None:
            raise ValueError(f"{steps[0].op.name} needs the window its tile is made from")
        plan: Resize = steps[0].resize(size)
        padded = plan.render(padded, source, padded_box)
        steps, size = steps[1:], plan.output_size
    result = apply_chain(padded, steps, Placement(padded_box, size), table, kernels)
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


def tile_stats(tile: Image.Image, stat: str) -> list[int]:
    """What a processed tile core reports for the next stage's global step."""
    return statistics.histogram(colour_bands(tile), stat)


STATISTICS_BYTES = 16 << 20  # pixels a band of the statistics pass holds at most


def leading_table(stage: Sequence[Step], image: Pixels) -> list[int] | None:
    """A chain that starts with a global step reads the statistics of the upload itself.

    One histogram pass over the input, a band of rows at a time, is all it takes (the histograms
    of the bands add up to the whole's); every later statistic is gathered from the tiles of the
    stage before.
    """
    first = stage[0]
    if first.op.kind != "global":
        return None
    rows = max(1, STATISTICS_BYTES // (image.size[0] * len(image.mode)))
    bands = row_bands(image, rows)
    counts = statistics.add(statistics.histogram(colour_bands(band), first.op.stat) for band in bands)
    return global_table(first, counts, without_alpha(image.mode))


def run_tiled(
    image: Image.Image, steps: Sequence[Step], tile_size: int, kernels: Mapping[str, Colour] | None = None
) -> Image.Image:
    """The distributed pipeline, stage by stage, in one process: what workers and collector do.

    Each stage is cut with its own halo, its tiles are processed and report the
    statistics the next stage's global step reads; the sum of those builds its table.
    """
    stages = split_stages(steps)
    table = leading_table(stages[0], image)
    for number, stage in enumerate(stages):
        tiles = stage_grid(stage, image.size, tile_size)
        done = [
            process_tile(cut_tile(image, t), stage, t.padded, t.core, image.size, table, kernels, t.source)
            for t in tiles
        ]
        boxes = [final_placement(stage, t.core, image.size).box for t in tiles]
        image = assemble(
            output_size(stage, image.size),
            chain_output_mode(image.mode, stage),
            zip(boxes, done, strict=True),
        )
        stat = needed_stat(stages, number)
        if stat:
            stats = statistics.add(tile_stats(tile, stat) for tile in done)
            table = global_table(stages[number + 1][0], stats, colour_bands(image).mode)
    return image
