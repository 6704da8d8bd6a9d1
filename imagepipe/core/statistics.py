"""Global-statistics operations: tiles report histograms, the master reduces them.

``contrast``, ``autocontrast`` and ``equalize`` each map pixel values through a
lookup table that depends only on a histogram of the whole (intermediate)
image.  Tiles count their core's histogram, the histograms add up to the whole
image's, and the table built from the sum is exactly the one Pillow would build
from the whole image.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from PIL import Image

BANDS = "bands"  # a histogram of each colour band: what autocontrast and equalize read
LUMA = "luma"  # a histogram of convert("L"): what contrast reads (its mean)


def histogram(colour: Image.Image, kind: str) -> list[int]:
    """The statistic ``kind`` of an L or RGB image."""
    return (colour.convert("L") if kind == LUMA else colour).histogram()


def add(histograms: Iterable[Sequence[int]]) -> list[int]:
    total: list[int] = []
    for counts in histograms:
        total = [a + b for a, b in zip(total, counts, strict=True)] if total else list(counts)
    return total


def contrast_table(luma: Sequence[int], params: Mapping[str, Any], bands: int) -> list[int]:
    """Blend every value with the image's mean luma, as ImageEnhance.Contrast does."""
    count = sum(luma)
    mean = int(sum(value * n for value, n in enumerate(luma)) / count + 0.5) if count else 0
    ramp = Image.frombytes("L", (256, 1), bytes(range(256)))
    blended = Image.blend(Image.new("L", (256, 1), mean), ramp, params["factor"])
    return list(blended.tobytes()) * bands


def autocontrast_table(counts: Sequence[int], params: Mapping[str, Any], bands: int) -> list[int]:
    """Stretch each band so its darkest kept value is 0 and its lightest 255."""
    return [v for band in _split(counts) for v in _stretch(band, params["cutoff"])]


def _stretch(counts: list[int], cutoff: float) -> list[int]:
    if cutoff:
        total = sum(counts)
        _trim(counts, int(total * cutoff // 100), range(256))
        _trim(counts, int(total * cutoff // 100), range(255, -1, -1))
    used = [value for value in range(256) if counts[value]]
    if not used or used[-1] <= used[0]:
        return list(range(256))
    low, high = used[0], used[-1]
    scale = 255.0 / (high - low)
    offset = -low * scale
    return [min(max(int(value * scale + offset), 0), 255) for value in range(256)]


def _trim(counts: list[int], cut: int, order: range) -> None:
    """Remove ``cut`` samples from one end of a histogram."""
    for value in order:
        if cut <= 0:
            return
        taken = min(cut, counts[value])
        counts[value] -= taken
        cut -= taken


def equalize_table(counts: Sequence[int], params: Mapping[str, Any], bands: int) -> list[int]:
    """Spread each band's values so its cumulative histogram is as even as it can be."""
    return [v for band in _split(counts) for v in _equalize(band)]


def _equalize(counts: list[int]) -> list[int]:
    used = [n for n in counts if n]
    step = (sum(used) - used[-1]) // 255 if len(used) > 1 else 0
    if not step:
        return list(range(256))
    table, running = [], step // 2
    for n in counts:
        table.append(running // step)
        running += n
    return table


def _split(counts: Sequence[int]) -> list[list[int]]:
    return [list(counts[start : start + 256]) for start in range(0, len(counts), 256)]
