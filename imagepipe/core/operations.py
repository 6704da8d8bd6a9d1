"""The operation catalogue and operation chains.

Every operation is defined by its whole-image reference: a Pillow call on the
full image.  Each operation also declares the *halo* -- how many pixels of
neighbourhood its output depends on -- so tiles can be cut with enough context
to reproduce the reference exactly.  A chain's halo is the sum of its steps'.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageFilter

MAX_CHAIN_LENGTH = 10


class ChainError(ValueError):
    """An operation chain that cannot be run; the message is shown to the user."""


@dataclass(frozen=True)
class Param:
    name: str
    kind: type  # int or float
    minimum: float
    maximum: float
    default: float | None = None

    def clean(self, op: str, raw: Any) -> int | float:
        if raw is None:
            if self.default is None:
                raise ChainError(f"{op}: parameter '{self.name}' is required")
            return self.default
        # bool is an int subclass; "radius": true is a mistake, not 1.
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise ChainError(f"{op}: parameter '{self.name}' must be a number")
        if self.kind is int and raw != int(raw):
            raise ChainError(f"{op}: parameter '{self.name}' must be a whole number")
        if not (self.minimum <= raw <= self.maximum):  # also rejects NaN
            raise ChainError(
                f"{op}: parameter '{self.name}' must be between {self.minimum} and {self.maximum}"
            )
        return self.kind(raw)


@dataclass(frozen=True)
class Operation:
    name: str
    kind: str  # point, neighbourhood, global, position, geometric (see DESIGN.md)
    apply: Callable[[Image.Image, Mapping[str, Any]], Image.Image]
    params: tuple[Param, ...] = ()
    halo: Callable[[Mapping[str, Any]], int] = lambda params: 0
    output_mode: Callable[[str], str] = lambda mode: mode
    description: str = ""


@dataclass(frozen=True)
class Step:
    op: Operation
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def halo(self) -> int:
        return self.op.halo(self.params)

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op.name, **self.params}


def _gaussian_blur_halo(params: Mapping[str, Any]) -> int:
    # Pillow runs three box-blur passes whose box radius is at most radius + 1/2,
    # and each pass reads ceil(box radius) pixels to either side.
    return 3 * (math.ceil(params["radius"]) + 1)


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        Operation(
            name="grayscale",
            kind="point",
            apply=lambda im, p: im.convert("L"),
            output_mode=lambda mode: "L",
            description="Convert to 8-bit grayscale (ITU-R 601-2 luma).",
        ),
        Operation(
            name="gaussian_blur",
            kind="neighbourhood",
            apply=lambda im, p: im.filter(ImageFilter.GaussianBlur(p["radius"])),
            params=(Param("radius", float, 0, 50, 2),),
            halo=_gaussian_blur_halo,
            description="Gaussian blur with the given radius in pixels.",
        ),
    )
}


def parse_chain(raw: Any) -> list[Step]:
    """Validate a chain such as ``[{"op": "gaussian_blur", "radius": 4}]``."""
    if not isinstance(raw, list) or not raw:
        raise ChainError("operations must be a non-empty list")
    if len(raw) > MAX_CHAIN_LENGTH:
        raise ChainError(f"a chain has at most {MAX_CHAIN_LENGTH} operations, got {len(raw)}")
    return [_parse_step(position, item) for position, item in enumerate(raw, start=1)]


def _parse_step(position: int, item: Any) -> Step:
    if not isinstance(item, dict) or not isinstance(item.get("op"), str):
        raise ChainError(f"operation {position} must be an object with an 'op' name")
    name = item["op"]
    op = OPERATIONS.get(name)
    if op is None:
        raise ChainError(f"unknown operation '{name}'; known: {', '.join(sorted(OPERATIONS))}")
    known = {param.name for param in op.params}
    unexpected = sorted(set(item) - known - {"op"})
    if unexpected:
        raise ChainError(f"{name}: unexpected parameter(s) {', '.join(unexpected)}")
    return Step(op, {param.name: param.clean(name, item.get(param.name)) for param in op.params})


def chain_halo(steps: Iterable[Step]) -> int:
    return sum(step.halo for step in steps)


def chain_output_mode(mode: str, steps: Iterable[Step]) -> str:
    for step in steps:
        mode = step.op.output_mode(mode)
    return mode


def apply_chain(image: Image.Image, steps: Iterable[Step]) -> Image.Image:
    for step in steps:
        image = step.op.apply(image, step.params)
    return image
