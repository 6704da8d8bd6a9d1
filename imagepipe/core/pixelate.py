"""Pixelate: the one position-dependent operation.

Blocks sit on a grid anchored at the image's top-left corner, so a tile must
know its offset in the image to find the block edges.  Sums are exact
integers; each block becomes its per-band mean rounded half up,
``(2 * sum + n) // (2 * n)``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def pixelate(image: Image.Image, block: int, left: int = 0, top: int = 0) -> Image.Image:
    """Pixelate ``image`` whose top-left pixel sits at (left, top) in the whole image."""
    pixels = np.asarray(image, dtype=np.int64)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    height, width, bands = pixels.shape
    # Pad so the array starts and ends on block edges of the whole image's grid.
    before_y, before_x = top % block, left % block
    after_y, after_x = -(before_y + height) % block, -(before_x + width) % block
    padding = ((before_y, after_y), (before_x, after_x), (0, 0))
    padded = np.pad(pixels, padding)
    counts = np.pad(np.ones((height, width), dtype=np.int64), padding[:2])
    rows, cols = padded.shape[0] // block, padded.shape[1] // block
    sums = padded.reshape(rows, block, cols, block, bands).sum(axis=(1, 3))
    n = counts.reshape(rows, block, cols, block).sum(axis=(1, 3))[:, :, None]
    means = (2 * sums + n) // (2 * np.maximum(n, 1))
    filled = means.repeat(block, axis=0).repeat(block, axis=1)
    out = filled[before_y : before_y + height, before_x : before_x + width].astype(np.uint8)
    return Image.fromarray(out[:, :, 0] if image.mode == "L" else out, image.mode)
