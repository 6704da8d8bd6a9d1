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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import cv2
import numpy as np
from PIL import Image

from .operations import Colour, Placement

# Each worker process takes a core; OpenCV's own threads would only contend with the others.
cv2.setNumThreads(1)

_Array = Callable[[np.ndarray, int], np.ndarray]


def _rank(statistic: _Array) -> Colour:
    def run(image: Image.Image, params: Mapping[str, Any], placement: Placement) -> Image.Image:
        return Image.fromarray(statistic(np.asarray(image), params["size"]))

    return run


def _block(size: int) -> np.ndarray:
    return np.ones((size, size), np.uint8)


FAST: dict[str, Colour] = {
    "median": _rank(lambda pixels, size: cv2.medianBlur(pixels, size)),
    "erode": _rank(lambda pixels, size: cv2.erode(pixels, _block(size))),
    "dilate": _rank(lambda pixels, size: cv2.dilate(pixels, _block(size))),
}
ENGINES: dict[str, Mapping[str, Colour]] = {"pillow": {}, "fast": FAST}
