"""The operation catalogue and operation chains.

Every operation is defined by its whole-image reference: a Pillow call on the
full image.  Each declares its *kind* and what tiling needs from it (both in the
README's "Operations" section):

* ``halo`` -- how many pixels of neighbourhood its output depends on, so tiles
  are cut with enough context to reproduce the reference exactly;
* ``placement`` -- position-dependent operations see where the tile sits in
  the current image;
* ``move`` -- geometric operations map a tile's box and the image size to
  where they land.

Operations act on the colour bands; an alpha band passes through unchanged
(geometric operations move it with the pixels).  Consecutive per-band point
operations are fused into one lookup table, so such a chain is one pass.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageColor, ImageEnhance, ImageFilter, ImageOps

from . import statistics
from .pixelate import pixelate
from .resample import FILTERS, Resize
from .tiling import Box

MAX_CHAIN_LENGTH = 10
COLOUR = "#[0-9a-fA-F]{6}([0-9a-fA-F]{2})?"
SEPIA = (0.393, 0.769, 0.189, 0, 0.349, 0.686, 0.168, 0, 0.272, 0.534, 0.131, 0)
_RAMP = Image.frombytes("L", (256, 1), bytes(range(256)))


class ChainError(ValueError):
    """An operation chain that cannot be run; the message is shown to the user."""


@dataclass(frozen=True)
class Param:
    name: str
    kind: type[int] | type[float] | type[str]
    minimum: float = 0
    maximum: float = 0
    default: float | str | None = None
    odd: bool = False
    choices: tuple[int, ...] | tuple[str, ...] = ()
    pattern: str = ""  # a text parameter's form (a colour's #rrggbb), when it has no choices

    def clean(self, op: str, raw: Any) -> int | float | str:
        if raw is None:
            if self.default is None:
                raise ChainError(f"{op}: parameter '{self.name}' is required")
            return self.default
        if self.kind is str and self.pattern:  # text of a form: a colour
            if not isinstance(raw, str) or not re.fullmatch(self.pattern, raw):
                raise ChainError(f"{op}: parameter '{self.name}' must be {self.pattern_help}")
            return raw
        if self.kind is str:  # a name, one of the choices
            if raw not in self.choices or not isinstance(raw, str):
                raise ChainError(
                    f"{op}: parameter '{self.name}' must be one of {', '.join(map(str, self.choices))}"
                )
            return raw
        # bool is an int subclass; "radius": true is a mistake, not 1.
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise ChainError(f"{op}: parameter '{self.name}' must be a number")
        # NaN and infinity (JSON's 1e400) fit no range, and int() of either raises.
        if isinstance(raw, float) and not math.isfinite(raw):
            raise ChainError(f"{op}: parameter '{self.name}' must be a finite number")
        if self.kind is int and raw != int(raw):
            raise ChainError(f"{op}: parameter '{self.name}' must be a whole number")
        if self.choices and raw not in self.choices:
            raise ChainError(f"{op}: parameter '{self.name}' must be one of {list(self.choices)}")
        if not (self.minimum <= raw <= self.maximum):
            raise ChainError(
                f"{op}: parameter '{self.name}' must be between {self.minimum} and {self.maximum}"
            )
        if self.odd and int(raw) % 2 == 0:
            raise ChainError(f"{op}: parameter '{self.name}' must be odd")
        return self.kind(raw)

    @property
    def pattern_help(self) -> str:
        return "a colour: #rrggbb, or #rrggbbaa with its alpha" if self.pattern == COLOUR else self.pattern

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"name": self.name, "type": self.kind.__name__, "default": self.default}
        if self.kind is not str:
            described |= {"min": self.minimum, "max": self.maximum}
        if self.odd:
            described["odd"] = True
        if self.choices:
            described["choices"] = list(self.choices)
        if self.pattern:
            described["pattern"] = self.pattern
        return described


@dataclass(frozen=True)
class Placement:
    """Where a (padded) tile sits in the image as it is at this step of the chain."""

    box: Box
    size: tuple[int, int]


Colour = Callable[[Image.Image, Mapping[str, Any], Placement], Image.Image]
Lut = Callable[[Mapping[str, Any]], Image.Image]
_Halo = Callable[[Mapping[str, Any]], int]
_Table = Callable[[list[int], Mapping[str, Any], int], list[int]]
_Make = Callable[[Mapping[str, Any]], ImageFilter.Filter | type[ImageFilter.Filter]]  # an instance or a class


@dataclass(frozen=True)
class Operation:
    name: str
    kind: str  # point, neighbourhood, global, position, geometric, resample (README, "Operations")
    description: str
    colour: Colour | None = None  # acts on an L or RGB image
    lut: Callable[[Mapping[str, Any]], Image.Image] | None = None  # per-band point op on a ramp
    params: tuple[Param, ...] = ()
    halo: Callable[[Mapping[str, Any]], int] = lambda params: 0
    colour_mode: Callable[[str], str] = lambda mode: mode
    transpose: Image.Transpose | None = None  # geometric operations
    stat: str = ""  # global operations: the whole-image histogram they read (statistics.py)
    table: Callable[[list[int], Mapping[str, Any], int], list[int]] | None = None  # ... and use
    # Resampling operations: what they do to an image of a size (raising ChainError for one they
    # cannot apply to), and the Pillow call on the whole image they are defined by.
    plan: Callable[[Mapping[str, Any], tuple[int, int]], Resize] | None = None
    reference: Callable[[Image.Image, Mapping[str, Any]], Image.Image] | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "op": self.name,
            "kind": self.kind,
            "description": self.description,
            "params": [param.describe() for param in self.params],
        }


@dataclass(frozen=True)
class Step:
    op: Operation
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def halo(self) -> int:
        return self.op.halo(self.params)

    def resize(self, size: tuple[int, int]) -> Resize:
        """A resampling step's plan for an image of ``size``."""
        assert self.op.plan is not None  # every resampling operation has one
        return self.op.plan(self.params, size)

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op.name, **self.params}


def _gaussian_halo(radius: float) -> int:
    # Pillow runs three box-blur passes whose box radius is at most radius + 1/2,
    # and each pass reads ceil(box radius) pixels to either side.
    return 3 * (math.ceil(radius) + 1)


def _filter(make: _Make) -> Colour:
    return lambda image, params, placement: image.filter(make(params))


def _enhance(enhancer: Callable[[Image.Image], ImageEnhance._Enhance]) -> Lut:
    return lambda params: enhancer(_RAMP).enhance(params["factor"])


def _point(name: str, description: str, lut: Lut, params: tuple[Param, ...] = ()) -> Operation:
    return Operation(name, "point", description, lut=lut, params=params)


def _neighbourhood(
    name: str, description: str, make: _Make, halo: _Halo, params: tuple[Param, ...] = ()
) -> Operation:
    return Operation(name, "neighbourhood", description, colour=_filter(make), halo=halo, params=params)


def _rank(name: str, statistic: str, filter_class: Callable[[int], ImageFilter.Filter]) -> Operation:
    """A rank filter over a size x size window; it reads size // 2 pixels to each side."""
    return _neighbourhood(
        name,
        f"{statistic} of a size × size window.",
        lambda p: filter_class(p["size"]),
        lambda p: p["size"] // 2,
        (_SIZE,),
    )


def _global(
    name: str, description: str, stat: str, table: _Table, params: tuple[Param, ...] = ()
) -> Operation:
    return Operation(name, "global", description, stat=stat, table=table, params=params)


def _geometric(name: str, description: str, transpose: Image.Transpose) -> Operation:
    return Operation(name, "geometric", description, transpose=transpose)


def _resampling(
    name: str,
    description: str,
    params: tuple[Param, ...],
    plan: Callable[..., Resize],
    reference: Callable[..., Image.Image],
) -> Operation:
    return Operation(name, "resample", description, params=params, plan=plan, reference=reference)


def _side(name: str, default: int | None = 0) -> Param:
    return Param(name, int, 0 if default == 0 else 1, 100_000, default)


def _resized(params: Mapping[str, Any], size: tuple[int, int]) -> tuple[int, int]:
    """resize's output size: by a scale, or to a width and/or a height (both: within that box,
    as ImageOps.contain sizes it, unless the aspect is ignored)."""
    (width, height), scale = size, params["scale"]
    wanted = (params["width"], params["height"])
    if scale:
        if any(wanted):
            raise ChainError("resize: give a scale, or a width and/or a height, not both")
        return max(1, round(width * scale)), max(1, round(height * scale))
    if not any(wanted):
        raise ChainError("resize: give a width, a height or a scale")
    if all(wanted):
        return wanted if params["aspect"] == "ignore" else _contained(size, wanted)
    if wanted[0]:
        return wanted[0], max(1, round(height * wanted[0] / width))
    return max(1, round(width * wanted[1] / height)), wanted[1]


def _contained(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """ImageOps.contain's size for an image of ``size`` within ``box``."""
    (width, height), (out_width, out_height) = size, box
    if width / height > out_width / out_height:
        return out_width, max(1, round(height / width * out_width))
    if width / height < out_width / out_height:
        return max(1, round(width / height * out_height)), out_height
    return box


def _crop_box(params: Mapping[str, Any], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """crop's box, clamped to the image; one that misses it is refused."""
    left, top = params["left"], params["top"]
    right, bottom = left + params["width"], top + params["height"]
    clamped = (min(left, size[0]), min(top, size[1]), min(right, size[0]), min(bottom, size[1]))
    if clamped[2] <= clamped[0] or clamped[3] <= clamped[1]:
        raise ChainError(
            f"crop: the box ({left}, {top}, {right}, {bottom}) lies outside the {size[0]}×{size[1]} image"
        )
    return clamped


def _thumbnail(params: Mapping[str, Any], size: tuple[int, int]) -> Resize:
    """Image.thumbnail's arithmetic: the size within the box keeping the aspect (never larger), and
    the blocks its reducing gap averages first."""
    (width, height), (x, y) = size, (params["width"], params["height"])
    name, gap = params["filter"], params["reducing_gap"]
    if 0 < gap < 1:
        raise ChainError("thumbnail: parameter 'reducing_gap' must be 0 (none) or at least 1")
    if x >= width and y >= height:
        return Resize(size, size, name)
    aspect = width / height
    if x / y >= aspect:
        x = max(min(math.floor(y * aspect), math.ceil(y * aspect), key=lambda n: abs(aspect - n / y)), 1)
    else:
        y = max(
            min(
                math.floor(x / aspect),
                math.ceil(x / aspect),
                key=lambda n: 0 if n == 0 else abs(aspect - x / n),
            ),
            1,
        )
    factor = (1, 1)
    if gap and name != "nearest":
        factor = (int(width / x / gap) or 1, int(height / y / gap) or 1)
    return Resize(size, (x, y), name, factor=factor)


def _fitted_box(size: tuple[int, int], box: tuple[int, int]) -> tuple[float, float, float, float]:
    """ImageOps.fit's crop (centred, no bleed), in its own floating-point steps."""
    live = (float(size[0]), float(size[1]))
    live_ratio, output_ratio = live[0] / live[1], box[0] / box[1]
    if live_ratio == output_ratio:
        crop = live
    elif live_ratio >= output_ratio:
        crop = (output_ratio * live[1], live[1])
    else:
        crop = (live[0], live[0] / output_ratio)
    left, top = (live[0] - crop[0]) * 0.5, (live[1] - crop[1]) * 0.5
    return (left, top, left + crop[0], top + crop[1])


def _padded(params: Mapping[str, Any], size: tuple[int, int]) -> Resize:
    """ImageOps.pad's arithmetic: contained (ImageOps.contain's size), then centred on a canvas of
    the box's size filled with the background."""
    box = (params["width"], params["height"])
    inner = _contained(size, box)
    offset = (
        (round((box[0] - inner[0]) * 0.5), 0) if inner[0] != box[0] else (0, round((box[1] - inner[1]) * 0.5))
    )
    return Resize(size, inner, params["filter"], canvas=box, offset=offset, background=params["background"])


def _pad_whole(image: Image.Image, plan: Resize) -> Image.Image:
    """ImageOps.pad on the whole image (its contained size never 0 wide or high, where Pillow's
    would leave only the background)."""
    assert plan.canvas is not None  # a pad's plan has one
    inner = image.resize(plan.resized, FILTERS[plan.name])
    if inner.size == plan.canvas:
        return inner
    out = Image.new(image.mode, plan.canvas, ImageColor.getcolor(plan.background, image.mode))
    out.paste(inner, plan.offset)
    return out


def _cropped(params: Mapping[str, Any], size: tuple[int, int]) -> Resize:
    """crop as a resize: a box of whole pixels, the output its size (Pillow's crop shortcut)."""
    box = _crop_box(params, size)
    return Resize(size, (box[2] - box[0], box[3] - box[1]), "nearest", box=box)


def _thumbnailed(image: Image.Image, params: Mapping[str, Any]) -> Image.Image:
    copy = image.copy()
    copy.thumbnail(
        (params["width"], params["height"]), FILTERS[params["filter"]], params["reducing_gap"] or None
    )
    return copy


_FILTER = Param("filter", str, default="bicubic", choices=tuple(FILTERS))
_FACTOR = Param("factor", float, 0, 4, 1)
_RADIUS = Param("radius", float, 0, 50, 2)
_SIZE = Param("size", int, 3, 15, 3, odd=True)

_CATALOGUE = (
    Operation(
        "grayscale",
        "point",
        "Convert to 8-bit grayscale (ITU-R 601-2 luma).",
        colour=lambda im, p, at: im.convert("L"),
        colour_mode=lambda mode: "L",
    ),
    _point("invert", "Negate every colour band.", lambda p: ImageOps.invert(_RAMP)),
    Operation(
        "sepia",
        "point",
        "Warm brown tone (the classic sepia matrix).",
        colour=lambda im, p, at: im.convert("RGB").convert("RGB", SEPIA),
        colour_mode=lambda mode: "RGB",
    ),
    _point(
        "brightness",
        "Scale brightness; 0 is black, 1 unchanged.",
        _enhance(ImageEnhance.Brightness),
        (_FACTOR,),
    ),
    Operation(
        "saturation",
        "point",
        "Scale colour saturation; 0 is grayscale, 1 unchanged.",
        colour=lambda im, p, at: ImageEnhance.Color(im).enhance(p["factor"]),
        params=(_FACTOR,),
    ),
    Operation(
        "threshold",
        "point",
        "Black and white at a luma level.",
        colour=lambda im, p, at: im.convert("L").point(lambda v: 255 if v >= p["level"] else 0),
        colour_mode=lambda mode: "L",
        params=(Param("level", int, 0, 255, 128),),
    ),
    _point(
        "posterize",
        "Keep the top bits of each band.",
        lambda p: ImageOps.posterize(_RAMP, p["bits"]),
        (Param("bits", int, 1, 8, 4),),
    ),
    _point(
        "solarize",
        "Invert values at or above a threshold.",
        lambda p: ImageOps.solarize(_RAMP, p["threshold"]),
        (Param("threshold", int, 0, 255, 128),),
    ),
    _neighbourhood(
        "gaussian_blur",
        "Gaussian blur with the given radius in pixels.",
        lambda p: ImageFilter.GaussianBlur(p["radius"]),
        lambda p: _gaussian_halo(p["radius"]),
        (_RADIUS,),
    ),
    _neighbourhood(
        "box_blur",
        "Box blur with the given radius in pixels.",
        lambda p: ImageFilter.BoxBlur(p["radius"]),
        lambda p: math.ceil(p["radius"]) + 1,
        (_RADIUS,),
    ),
    _neighbourhood(
        "unsharp_mask",
        "Sharpen by subtracting a Gaussian blur.",
        lambda p: ImageFilter.UnsharpMask(p["radius"], p["percent"], p["threshold"]),
        lambda p: _gaussian_halo(p["radius"]),
        (_RADIUS, Param("percent", int, 0, 500, 150), Param("threshold", int, 0, 255, 3)),
    ),
    _neighbourhood("sharpen", "Pillow's SHARPEN kernel.", lambda p: ImageFilter.SHARPEN, lambda p: 1),
    _neighbourhood(
        "edge_detect", "Pillow's FIND_EDGES kernel.", lambda p: ImageFilter.FIND_EDGES, lambda p: 1
    ),
    _neighbourhood("emboss", "Pillow's EMBOSS kernel.", lambda p: ImageFilter.EMBOSS, lambda p: 1),
    _rank("median", "Median", ImageFilter.MedianFilter),
    _rank("erode", "Minimum", ImageFilter.MinFilter),
    _rank("dilate", "Maximum", ImageFilter.MaxFilter),
    _global(
        "contrast",
        "Scale contrast around the whole image's mean luma; 0 is flat grey.",
        statistics.LUMA,
        statistics.contrast_table,
        (_FACTOR,),
    ),
    _global(
        "autocontrast",
        "Stretch each band to the full range, ignoring `cutoff` % at each end.",
        statistics.BANDS,
        statistics.autocontrast_table,
        (Param("cutoff", float, 0, 49, 0),),
    ),
    _global(
        "equalize",
        "Flatten each band's histogram over the whole image.",
        statistics.BANDS,
        statistics.equalize_table,
    ),
    Operation(
        "pixelate",
        "position",
        "Blocks on a grid from the top-left corner, each its mean colour.",
        colour=lambda im, p, at: pixelate(im, p["block"], at.box.left, at.box.top),
        halo=lambda p: p["block"] - 1,
        params=(Param("block", int, 2, 256, 8),),
    ),
    _geometric("flip_horizontal", "Mirror left to right.", Image.Transpose.FLIP_LEFT_RIGHT),
    _geometric("flip_vertical", "Flip top to bottom.", Image.Transpose.FLIP_TOP_BOTTOM),
    Operation(
        "rotate",
        "geometric",
        "Rotate counter-clockwise by 90, 180 or 270 degrees.",
        params=(Param("angle", int, 90, 270, 90, choices=(90, 180, 270)),),
    ),
    _geometric("transpose", "Swap rows and columns.", Image.Transpose.TRANSPOSE),
    _resampling(
        "resize",
        "Resize by a scale, or to a width and/or height (the aspect kept unless ignored), by a filter.",
        (
            _side("width"),
            _side("height"),
            Param("scale", float, 0, 100, 0),
            _FILTER,
            Param("aspect", str, default="keep", choices=("keep", "ignore")),
        ),
        lambda p, size: Resize(size, _resized(p, size), p["filter"]),
        lambda im, p: im.resize(_resized(p, im.size), FILTERS[p["filter"]]),
    ),
    _resampling(
        "crop",
        "Keep a box of the image: left, top, width, height (clamped to the image).",
        (_side("left"), _side("top"), _side("width", None), _side("height", None)),
        _cropped,
        lambda im, p: im.crop(_crop_box(p, im.size)),
    ),
    _resampling(
        "thumbnail",
        "Fit within width × height, keeping the aspect, never enlarging (Image.thumbnail, its reducing gap).",
        (_side("width", None), _side("height", None), _FILTER, Param("reducing_gap", float, 0, 100, 2.0)),
        _thumbnail,
        _thumbnailed,
    ),
    _resampling(
        "pad",
        "Contain in width × height: resized to fit, centred on a background colour (ImageOps.pad).",
        (
            _side("width", None),
            _side("height", None),
            _FILTER,
            Param("background", str, default="#000000", pattern=COLOUR),
        ),
        _padded,
        lambda im, p: _pad_whole(im, _padded(p, im.size)),
    ),
    _resampling(
        "fit",
        "Cover width × height: the centred crop of that aspect, resized (ImageOps.fit).",
        (_side("width", None), _side("height", None), _FILTER),
        lambda p, size: Resize(
            size, (p["width"], p["height"]), p["filter"], box=_fitted_box(size, (p["width"], p["height"]))
        ),
        lambda im, p: ImageOps.fit(im, (p["width"], p["height"]), FILTERS[p["filter"]]),
    ),
)
OPERATIONS: dict[str, Operation] = {op.name: op for op in _CATALOGUE}


def catalogue() -> list[dict[str, Any]]:
    return [op.describe() for op in _CATALOGUE]


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
        # repr(): the name is the client's text, maybe a lone surrogate that no encoder can write.
        raise ChainError(f"unknown operation {name!r}; known: {', '.join(sorted(OPERATIONS))}")
    known = {param.name for param in op.params}
    unexpected = sorted(set(item) - known - {"op"})
    if unexpected:
        raise ChainError(f"{name}: unexpected parameter(s) {', '.join(map(repr, unexpected))}")
    return Step(op, {param.name: param.clean(name, item.get(param.name)) for param in op.params})


def chain_halo(steps: Iterable[Step]) -> int:
    return sum(step.halo for step in steps)


def without_alpha(mode: str) -> str:
    """The mode of an image of ``mode`` without its alpha band: what colour steps and statistics see."""
    return mode[:-1] if mode in ("LA", "RGBA") else mode


def output_mode(mode: str, step: Step) -> str:
    if step.op.kind in ("geometric", "resample"):
        return mode
    colour = step.op.colour_mode(without_alpha(mode))
    return colour + "A" if without_alpha(mode) != mode else colour


def chain_output_mode(mode: str, steps: Iterable[Step]) -> str:
    for step in steps:
        mode = output_mode(mode, step)
    return mode
