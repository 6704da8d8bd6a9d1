"""Resizing as Pillow does it to the whole image, one output tile at a time.

``Image.resize`` (Pillow 13's ``Resample.c``) is separable. For each output sample of an axis it
works out, in doubles, the centre of that sample in the input (``box start + (i + 0.5) * scale``),
the input samples its filter reaches, and their weights, normalised and then rounded to integers
of 22 fractional bits; a pass sums ``pixel * weight`` in integers and rounds back to 8 bits. One
pass runs on the other's 8-bit result, the horizontal first unless the height shrinks by more
than twice the width does; an axis whose size and box do not change is not passed over at all.
NEAREST is an affine scale that steps along each axis by adding the scale again and again. So
every output pixel depends only on the whole image's size, the box and the filter, never on the
other output pixels: ``Axis`` computes an output range's taps with exactly those operations in the
whole image's frame, and ``Resize.render`` runs the passes on the input window those taps read.
The result equals the same pixels of ``Image.resize`` on the whole image, byte for byte
(tests/core/test_resample.py proves it against Pillow).

An image with alpha is resized premultiplied (``RGBa``, ``La``), as Pillow does; a box that is
whole pixels of the output's size is a crop (Pillow's own shortcut); ``thumbnail``'s reducing gap
first averages blocks of pixels from the image's origin (``Image.reduce``), which a window aligned
to those blocks reproduces with Pillow's own call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
from PIL import Image, ImageColor

from .tiling import Box

FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "hamming": Image.Resampling.HAMMING,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
SUPPORT = {"box": 0.5, "bilinear": 1.0, "hamming": 1.0, "bicubic": 2.0, "lanczos": 3.0}
PRECISION_BITS = 22  # Resample.c: 32 - 8 - 2
_ONE = float(1 << PRECISION_BITS)
_HALF = 1 << (PRECISION_BITS - 1)
_HAMMING = (float(np.float32(0.54)), float(np.float32(0.46)))  # float literals in the C: 0.54f, 0.46f
PREMULTIPLIED = {"LA": "La", "RGBA": "RGBa"}


def _sinc(x: float) -> float:
    if x == 0.0:
        return 1.0
    x = x * math.pi
    return math.sin(x) / x


def _hamming(x: float) -> float:
    x = -x if x < 0.0 else x
    if x == 0.0:
        return 1.0
    if x >= 1.0:
        return 0.0
    x = x * math.pi
    return math.sin(x) / x * (_HAMMING[0] + _HAMMING[1] * math.cos(x))


def _lanczos(x: float) -> float:
    return _sinc(x) * _sinc(x / 3) if -3.0 <= x < 3.0 else 0.0


def _weights(name: str, x: np.ndarray) -> np.ndarray:
    """The filter at each ``x``, by the C's own operations in its own order (libm's sine for the
    two that need it, as Pillow's C calls it)."""
    if name == "box":
        return ((x > -0.5) & (x <= 0.5)).astype(np.float64)
    if name == "bilinear":
        x = np.abs(x)
        return np.where(x < 1.0, 1.0 - x, 0.0)
    if name == "bicubic":  # a = -0.5: (a + 2) and (a + 3) are folded by the compiler, exactly
        x = np.abs(x)
        near = ((1.5 * x - 2.5) * x) * x + 1
        far = (((x - 5) * x + 8) * x - 4) * -0.5
        return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))
    scalar = _hamming if name == "hamming" else _lanczos
    return np.array([scalar(value) for value in x.ravel().tolist()], np.float64).reshape(x.shape)


@dataclass(frozen=True)
class Axis:
    """One axis of a resize: ``size`` input samples, the box from ``start`` to ``end`` (as Pillow
    hands them to its C: float32), resampled to ``out`` samples by the filter ``name``."""

    size: int
    start: float
    end: float
    out: int
    name: str

    @property
    def passes(self) -> bool:
        """Whether Pillow passes over this axis at all (its ``need_horizontal``/``need_vertical``)."""
        return self.out != self.size or self.start != 0 or self.end != self.out

    @cached_property
    def _scale(self) -> float:
        return float(np.float32(self.end) - np.float32(self.start)) / self.out

    @cached_property
    def _nearest(self) -> np.ndarray:
        """NEAREST's input sample of every output sample: the C adds the scale once per step."""
        steps = np.full(self.out, self._scale)
        steps[0] = float(np.float32(self.start)) + self._scale * 0.5
        return np.add.accumulate(steps).astype(np.int64)  # (int) of a position, never negative here

    def _reach(self, first: int, last: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For outputs ``first`` to ``last``: each one's centre in the input, the first input
        sample it reads and how many."""
        if self.name == "nearest":
            low = self._nearest[first:last]
            return low.astype(np.float64), low, np.ones(last - first, np.int64)
        support = SUPPORT[self.name] * max(self._scale, 1.0)
        centre = (
            float(np.float32(self.start)) + (np.arange(first, last, dtype=np.float64) + 0.5) * self._scale
        )
        low = np.maximum(np.trunc(centre - support + 0.5).astype(np.int64), 0)
        high = np.minimum(np.trunc(centre + support + 0.5).astype(np.int64), self.size)
        return centre, low, high - low

    def taps(self, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
        """For outputs ``first`` to ``last``: the first input sample each reads, and its integer
        weights (one row each, zero past the samples it reads). Kept for the next tile of the
        same column or row of tiles (a worker's tiles of a job share them)."""
        return _taps(self, first, last)

    def computed_taps(self, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
        centre, low, count = self._reach(first, last)
        if self.name == "nearest":
            return low, np.full((last - first, 1), 1 << PRECISION_BITS, np.int64)
        filterscale = max(self._scale, 1.0)
        offsets = np.arange(math.ceil(SUPPORT[self.name] * filterscale) * 2 + 1)
        reach = (low[:, None] + offsets[None, :]).astype(np.float64)
        weights = _weights(self.name, (reach - centre[:, None] + 0.5) * (1.0 / filterscale))
        weights[offsets[None, :] >= count[:, None]] = 0.0
        total = np.add.accumulate(weights, axis=1)[:, -1:]  # summed in order, as the C does
        weights = np.divide(weights, total, out=weights.copy(), where=total != 0.0)
        scaled = weights * _ONE
        return low, np.trunc(np.where(weights < 0, -0.5 + scaled, 0.5 + scaled)).astype(np.int64)

    def window(self, first: int, last: int) -> tuple[int, int]:
        """The input samples outputs ``first`` to ``last`` read: [low, high)."""
        if not self.passes:  # (NEAREST's steps of exactly 1 from 0.5 read the same samples)
            return first, last
        _, low, count = self._reach(first, last)
        return int(low.min()), int((low + np.maximum(count, 1)).max())


@lru_cache(maxsize=256)
def _taps(axis: Axis, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
    return axis.computed_taps(first, last)


def resample_axis(pixels: np.ndarray, axis: Axis, first: int, last: int, offset: int) -> np.ndarray:
    """One pass along ``pixels``' first axis (its sample 0 is the input's ``offset``): outputs
    ``first`` to ``last``, in 8 bits as Pillow rounds them. Sums in 32-bit integers, as the C
    does (its weights keep them in range), one tap at a time over whole rows."""
    low, weights = axis.taps(first, last)
    start = low - offset
    if axis.name == "nearest":
        picked: np.ndarray = pixels[start]
        return picked
    rows = np.ascontiguousarray(pixels).reshape(len(pixels), -1)
    total = np.full((last - first, rows.shape[1]), _HALF, np.int32)
    taken = np.empty_like(total)
    for k in range(weights.shape[1]):
        tap = weights[:, k].astype(np.int32)[:, None]
        reach = np.minimum(start + k, len(rows) - 1)  # a zero weight where past the sample's reach
        np.multiply(rows[reach], tap, out=taken)
        total += taken
    total >>= PRECISION_BITS
    rounded: np.ndarray = np.clip(total, 0, 255).astype(np.uint8).reshape(last - first, *pixels.shape[1:])
    return rounded


@dataclass(frozen=True)
class Resize:
    """A resampling step as Pillow does it to a whole image of ``size``: ``factor`` blocks
    averaged first (``Image.reduce``, for thumbnail's reducing gap), then the ``box`` of that
    (float32 coordinates) resampled to ``resized`` by ``name``."""

    size: tuple[int, int]
    resized: tuple[int, int]
    name: str
    box: tuple[float, float, float, float] | None = None
    factor: tuple[int, int] = (1, 1)
    # pad: the output's size, the resized image at ``offset`` on ``background`` (a colour Image.new
    # reads for the image's mode)
    canvas: tuple[int, int] | None = None
    offset: tuple[int, int] = (0, 0)
    background: str = "#000000"

    @property
    def output_size(self) -> tuple[int, int]:
        return self.canvas or self.resized

    def placed(self, out: Box) -> Box | None:
        """The part of ``out`` (in the output) the resized image covers, in the resized image's
        frame; None where it is all background."""
        (x, y), (width, height) = self.offset, self.resized
        inner = Box(
            max(out.left - x, 0), max(out.top - y, 0), min(out.right - x, width), min(out.bottom - y, height)
        )
        return inner if inner.left < inner.right and inner.top < inner.bottom else None

    @property
    def reduced(self) -> tuple[int, int]:
        """The size of what the resample reads: the image, or its blocks' averages."""
        return (-(-self.size[0] // self.factor[0]), -(-self.size[1] // self.factor[1]))

    @property
    def frame(self) -> tuple[float, float, float, float]:
        """The box in the reduced frame, as Pillow passes it on (float32)."""
        if self.box is not None:
            return tuple(float(np.float32(value)) for value in self.box)  # type: ignore[return-value]
        if self.factor != (1, 1):  # Image.resize: the whole image's box over the factor
            return (
                0.0,
                0.0,
                *(float(np.float32(s / f)) for s, f in zip(self.size, self.factor, strict=True)),
            )  # type: ignore[return-value]
        return (0.0, 0.0, float(self.size[0]), float(self.size[1]))

    @property
    def unchanged(self) -> bool:
        return self.factor == (1, 1) and self.resized == self.size and self.frame == (0, 0, *self.size)

    @property
    def crops(self) -> bool:
        """Pillow's shortcut: a box of whole pixels that is the output's size is a crop (and the
        same size and box, a copy: ``unchanged``)."""
        left, top, right, bottom = self.frame
        return (
            self.factor == (1, 1)  # past a reduce, the box is all of what it made: no crop
            and left == int(left)
            and top == int(top)
            and right - left == self.resized[0]
            and bottom - top == self.resized[1]
        )

    @property
    def horizontal_first(self) -> bool:
        """Pillow 13's order of the passes: the vertical first when the height shrinks by more
        than twice what the width does (Resample.c, ``horizontal_first``)."""
        (width, height), (out_width, out_height) = self.reduced, self.resized
        return not (height - out_height > 0 and height - out_height > (width - out_width) * 2)

    def axes(self) -> tuple[Axis, Axis]:
        left, top, right, bottom = self.frame
        width, height = self.reduced
        return (
            Axis(width, left, right, self.resized[0], self.name),
            Axis(height, top, bottom, self.resized[1], self.name),
        )

    def source(self, out: Box) -> Box:
        """The input window (in the step's input) the output pixels ``out`` are made from (a
        pixel, unused, for a tile all background)."""
        placed = self.placed(out) if self.canvas else out
        if placed is None:
            return Box(0, 0, 1, 1)
        out = placed
        if self.crops:
            left, top = int(self.frame[0]), int(self.frame[1])
            return Box(out.left + left, out.top + top, out.right + left, out.bottom + top)
        across, down = self.axes()
        left, right = across.window(out.left, out.right)
        top, bottom = down.window(out.top, out.bottom)
        fx, fy = self.factor
        return Box(left * fx, top * fy, min(right * fx, self.size[0]), min(bottom * fy, self.size[1]))

    def render(self, window: Image.Image, source: Box, out: Box) -> Image.Image:
        """The output pixels ``out`` from ``window``, the input's pixels at ``source``."""
        if self.canvas:  # pad: the background, with what the resized image covers pasted on it
            padded = Image.new(
                window.mode, (out.width, out.height), ImageColor.getcolor(self.background, window.mode)
            )
            placed = self.placed(out)
            if placed is not None:
                (x, y) = self.offset
                padded.paste(
                    self._covered(window, source, placed),
                    (placed.left + x - out.left, placed.top + y - out.top),
                )
            return padded
        return self._covered(window, source, out)

    def _covered(self, window: Image.Image, source: Box, out: Box) -> Image.Image:
        mode = window.mode
        # Image.resize returns a copy of an unchanged image before it would premultiply
        if mode in PREMULTIPLIED and self.name != "nearest" and not self.unchanged:
            window = window.convert(PREMULTIPLIED[mode])
        if self.crops:
            left, top = int(self.frame[0]) - source.left, int(self.frame[1]) - source.top
            rendered = window.crop((out.left + left, out.top + top, out.right + left, out.bottom + top))
        else:
            rendered = self._resampled(window, source, out)
        return rendered.convert(mode) if rendered.mode != mode else rendered

    def _resampled(self, window: Image.Image, source: Box, out: Box) -> Image.Image:
        if self.factor != (1, 1):
            window = window.reduce(self.factor)
        left, top = source.left // self.factor[0], source.top // self.factor[1]
        bands = len(window.getbands())
        pixels = np.frombuffer(window.tobytes(), np.uint8).reshape(window.height, window.width, bands)
        across, down = self.axes()
        passes = [(across, out.left, out.right, left), (down, out.top, out.bottom, top)]
        for number in (0, 1) if self.horizontal_first else (1, 0):
            axis, first, last, offset = passes[number]
            turned = pixels.transpose(1, 0, 2) if number == 0 else pixels
            if axis.passes:
                turned = resample_axis(turned, axis, first, last, offset)
            else:
                turned = turned[first - offset : last - offset]
            pixels = turned.transpose(1, 0, 2) if number == 0 else turned
        return Image.frombytes(window.mode, (out.width, out.height), np.ascontiguousarray(pixels).tobytes())
