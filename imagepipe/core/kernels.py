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


FAST: dict[str, Colour] = {
    "median": _rank(lambda pixels, size: cv2.medianBlur(pixels, size)),
    "erode": _rank(lambda pixels, size: cv2.erode(pixels, _block(size))),
    "dilate": _rank(lambda pixels, size: cv2.dilate(pixels, _block(size))),
    "sharpen": _kernel3(ImageFilter.SHARPEN),
    "edge_detect": _kernel3(ImageFilter.FIND_EDGES),
    "emboss": _kernel3(ImageFilter.EMBOSS),
}
ENGINES: dict[str, Mapping[str, Colour]] = {"pillow": {}, "fast": FAST}
