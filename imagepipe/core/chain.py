"""Running a chain: step by step, on a whole image or on a tile that knows where it sits.

Per-band point steps are fused into one lookup table; geometric steps move the
tile's box; a global step reads a table built from whole-image statistics, so a
chain is cut into stages before each one (``split_stages``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import cast

from PIL import Image

from . import statistics
from .operations import Colour, Lut, Operation, Placement, Step, without_alpha
from .tiling import Box

_ROTATIONS = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}


def _transposition(step: Step) -> Image.Transpose:
    # Every geometric operation but rotate names its transposition.
    return (
        cast(Image.Transpose, step.op.transpose)
        if step.op.name != "rotate"
        else _ROTATIONS[step.params["angle"]]
    )


def move(step: Step, placement: Placement) -> Placement:
    """Where a box lands after the step: geometric operations move it, the rest don't. A resampling
    step changes the image's size; a box past one is already in its output (it starts a stage,
    whose tiles are cut from its output: ``pipeline.stage_grid``)."""
    if step.op.kind == "resample":
        return Placement(placement.box, step.resize(placement.size).output_size)
    if step.op.kind != "geometric":
        return placement
    (width, height), (left, top, right, bottom) = placement.size, placement.box.as_tuple()
    method = _transposition(step)
    moved = {
        Image.Transpose.FLIP_LEFT_RIGHT: ((width - right, top, width - left, bottom), (width, height)),
        Image.Transpose.FLIP_TOP_BOTTOM: ((left, height - bottom, right, height - top), (width, height)),
        Image.Transpose.ROTATE_180: (
            (width - right, height - bottom, width - left, height - top),
            (width, height),
        ),
        Image.Transpose.ROTATE_90: ((top, width - right, bottom, width - left), (height, width)),
        Image.Transpose.ROTATE_270: ((height - bottom, left, height - top, right), (height, width)),
        Image.Transpose.TRANSPOSE: ((top, left, bottom, right), (height, width)),
    }[method]
    return Placement(Box(*moved[0]), moved[1])


def colour_bands(image: Image.Image) -> Image.Image:
    """The image without its alpha band: what colour operations and statistics see."""
    colour = without_alpha(image.mode)
    return image.convert(colour) if colour != image.mode else image


def apply_step(
    image: Image.Image,
    step: Step,
    placement: Placement,
    table: list[int] | None = None,
    kernels: Mapping[str, Colour] | None = None,
) -> Image.Image:
    """One step; a global step uses ``table`` (from whole-image statistics) or, on a whole image, its own.

    ``kernels`` (``kernels.ENGINES``) may stand in for an operation's Pillow call.
    """
    if step.op.kind == "geometric":
        return image.transpose(_transposition(step))
    if step.op.kind == "resample":
        if placement.size != image.size:
            raise ValueError(f"{step.op.name} starts a stage: its tiles are resampled from their windows")
        assert step.op.reference is not None  # every resampling operation has one
        step.resize(image.size)  # refuses what cannot apply to this image, as a job would
        return step.op.reference(image, step.params)
    alpha = image.getchannel("A") if image.mode in ("LA", "RGBA") else None
    colour = colour_bands(image)
    if step.op.kind == "global":
        table = table or global_table(step, statistics.histogram(colour, step.op.stat), colour.mode)
        colour = colour.point(table)
    elif step.op.lut is not None:
        colour = colour.point(list(step.op.lut(step.params).tobytes()) * len(colour.getbands()))
    else:
        run = (kernels or {}).get(step.op.name, step.op.colour)
        assert run is not None  # every other point, neighbourhood or position operation has one
        colour = run(colour, step.params, placement)
    if alpha is None:
        return colour
    colour.putalpha(alpha)
    return colour


def global_table(step: Step, stats: list[int], colour_mode: str) -> list[int]:
    """The lookup table of a global step, from the whole image's statistics."""
    assert step.op.table is not None  # every global operation has one
    return step.op.table(stats, step.params, len(colour_mode))


def apply_chain(
    image: Image.Image,
    steps: Iterable[Step],
    placement: Placement | None = None,
    table: list[int] | None = None,
    kernels: Mapping[str, Colour] | None = None,
) -> Image.Image:
    """Run a chain on an image, or on a tile of one when ``placement`` says where it sits.

    On a tile, a global step may only come first, with ``table`` built from the
    whole image's statistics (see ``split_stages``).
    """
    placement = placement or Placement(Box(0, 0, *image.size), image.size)
    tiled = placement.size != image.size
    for position, step in enumerate(fuse_point_runs(list(steps))):
        if step.op.kind == "global" and tiled and (position or table is None):
            raise ValueError(f"{step.op.name} needs whole-image statistics: it must start a stage")
        image = apply_step(image, step, placement, table if position == 0 else None, kernels)
        placement = move(step, placement)
    return image


def split_stages(steps: Sequence[Step]) -> list[list[Step]]:
    """Cut a chain before each global step (each stage ends with a full stop for statistics) and
    each resampling step (its stage's tiles are cut from its output)."""
    stages: list[list[Step]] = []
    for step in steps:
        if not stages or step.op.kind in ("global", "resample"):
            stages.append([])
        stages[-1].append(step)
    return stages


def needed_stat(stages: Sequence[Sequence[Step]], stage: int) -> str:
    """The statistic stage ``stage``'s tiles must report: what the next stage's global step reads."""
    return stages[stage + 1][0].op.stat if stage + 1 < len(stages) else ""


def fuse_point_runs(steps: list[Step]) -> list[Step]:
    """Merge runs of per-band point operations into one lookup table: one pass over the pixels."""
    fused: list[Step] = []
    for step in steps:
        previous = fused[-1] if fused else None
        if step.op.lut is not None and previous is not None and previous.op.lut is not None:
            table = previous.op.lut(previous.params).point(list(step.op.lut(step.params).tobytes()))
            # cast: mypy cannot infer a lambda with a default argument from its context
            composed = Operation("fused", "point", "", lut=cast(Lut, lambda params, table=table: table))
            fused[-1] = Step(composed, {})
        else:
            fused.append(step)
    return fused
