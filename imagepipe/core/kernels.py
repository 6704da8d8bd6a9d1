"""Faster engines for catalogue operations, used only where they give Pillow's bytes exactly.

Pillow defines every operation (``operations.py``) and stays the reference. A route here stands
in for an operation's Pillow call in the workers once it is proven byte-identical on every mode,
size and parameter (``tests/core/test_kernels.py``, and the tiled-equals-whole property run with
each engine). ``WORKER_KERNELS=pillow`` turns every route off.

* ``median``, ``erode``, ``dilate``: OpenCV's ``medianBlur``, ``erode`` and ``dilate`` with a
  size × size block. Pillow's rank filter repeats the edge pixels beyond the image, as
  ``medianBlur`` does, and takes the exact middle (or least, or greatest) value of each band's
  window; a repeated edge pixel is already in its window, so no border can change a minimum or
  a maximum, and OpenCV's default border for these leaves them alone. 40–300 × faster.
* ``sharpen``, ``edge_detect``, ``emboss``: OpenCV's ``filter2D`` with Pillow's own kernel.
  Pillow sums ``offset + 0.5 + Σ weight × pixel`` in float32, clamps and truncates, applies the
  kernel's first row to the row below, and copies the image's outer frame (all of an image
  under 3 × 3) unchanged. These kernels' weights are multiples of 1/8, so every sum is exact in
  float32 whatever the order; OpenCV rounds half to even where Pillow rounds half up, so the
  sum gets 1/16 more, which moves no value but a tie. The kernel is flipped top to bottom and the
  frame copied back.
* ``unsharp_mask``: Pillow's own ``GaussianBlur`` at the radius (the blur its unsharp mask runs
  first: three box passes each way), then the mask step on whole arrays with OpenCV. Pillow
  keeps a band's value unless |value − blurred| exceeds the threshold, else adds
  ``diff * percent / 100`` in C integers (truncated toward zero) and clamps to 0–255. After a
  saturating subtraction one of value − blurred and blurred − value is 0, so the step is a
  256-entry table of that quotient by |diff| (0 up to the threshold) on each, one saturating
  add and one saturating subtraction; capping the table at 255 changes nothing, as the sum is
  clamped anyway. About 1.2 × faster on an RGB tile, no faster on L: the blur, most of the time,
  is still Pillow's.

``gaussian_blur`` and ``box_blur`` have no route. A box pass is, per line, the integer kernel
``[fw, ww × (2r + 1), fw]`` over edge-repeated pixels, ``(Σ + 2²³) >> 24`` and a byte after every
pass (``r = int(radius)``; ``ww``, ``fw`` and the Gaussian's box radius from Pillow's float32
arithmetic). Done with numpy cumulative sums, or with two OpenCV box sums and ``addWeighted`` per
pass, it gave Pillow's bytes on every case tried but was no faster: Pillow's C loop does a whole
pass in the time OpenCV takes for three array passes (``bench/README.md``, "Kernels").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageFilter

from .operations import Colour, Placement

# Each worker process takes a core; OpenCV's own threads would only contend with the others.
cv2.setNumThreads(1)

_Array = Callable[[np.ndarray, int], np.ndarray]


def _rank(statistic: _Array) -> Colour:
    def run(image: Image.Image, params: Mapping[str, Any], placement: Placement) -> Image.Image:
        return Image.fromarray(statistic(np.asarray(image), params["size"]))

    return run


def _kernel3(pillow: type[ImageFilter.BuiltinFilter]) -> Colour:
    size, scale, offset, weights = pillow.filterargs
    kernel = np.flipud(np.array(weights, np.float32).reshape(size) / scale)

    def run(image: Image.Image, params: Mapping[str, Any], placement: Placement) -> Image.Image:
        pixels = np.asarray(image)
        if min(pixels.shape[:2]) < 3:
            return image.copy()
        out = cv2.filter2D(pixels, -1, kernel, delta=offset + 1 / 16, borderType=cv2.BORDER_REPLICATE)
        out[0], out[-1], out[:, 0], out[:, -1] = pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]
        return Image.fromarray(out)

    return run


def _block(size: int) -> np.ndarray:
    return np.ones((size, size), np.uint8)


def unsharp(pixels: np.ndarray, blurred: np.ndarray, percent: int, threshold: int) -> np.ndarray:
    """Pillow's unsharp-mask step: each band moved away from its blurred value, by the table of
    ``|diff| * percent / 100`` (C integers, kept within a byte; 0 up to the threshold)."""
    diff = np.arange(256)
    step = np.where(diff > threshold, np.minimum(diff * percent // 100, 255), 0).astype(np.uint8)
    raised = cv2.add(pixels, cv2.LUT(cv2.subtract(pixels, blurred), step))
    return np.asarray(cv2.subtract(raised, cv2.LUT(cv2.subtract(blurred, pixels), step)))


def _unsharp_mask(image: Image.Image, params: Mapping[str, Any], placement: Placement) -> Image.Image:
    blurred = image.filter(ImageFilter.GaussianBlur(params["radius"]))
    return Image.fromarray(
        unsharp(np.asarray(image), np.asarray(blurred), params["percent"], params["threshold"])
    )


FAST: dict[str, Colour] = {
    "median": _rank(lambda pixels, size: cv2.medianBlur(pixels, size)),
    "erode": _rank(lambda pixels, size: cv2.erode(pixels, _block(size))),
    "dilate": _rank(lambda pixels, size: cv2.dilate(pixels, _block(size))),
    "sharpen": _kernel3(ImageFilter.SHARPEN),
    "edge_detect": _kernel3(ImageFilter.FIND_EDGES),
    "emboss": _kernel3(ImageFilter.EMBOSS),
    "unsharp_mask": _unsharp_mask,
}
ENGINES: dict[str, Mapping[str, Colour]] = {"pillow": {}, "fast": FAST}
