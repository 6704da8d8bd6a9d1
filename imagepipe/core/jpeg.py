"""A JPEG of any size, never held whole: libvips encodes it from the pixels spooled raw a band at
a time (``spooled``), reading them in a stream.

libvips' encoder is the same libjpeg-turbo as Pillow's, asked for what Pillow asks (the quality,
4:2:0 chroma for colour, no optimised Huffman tables): its entropy-coded scan is byte for byte
Pillow's, so the file decodes to the same pixels; only the header differs (libvips writes no JFIF
density of its own). ``tests/core/test_jpeg.py`` holds it to that.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from .libvips import pyvips  # set up to hold as little as it can
from .pipeline import Pixels, row_bands

BAND_BYTES = 4 << 20  # rows spooled at a time, at most about this much


def write_jpeg(
    pixels: Pixels, out: BinaryIO, quality: int, icc_profile: bytes | None = None, spool: str | None = None
) -> None:
    """``pixels`` (L or RGB) as a baseline JPEG written to ``out``; the raw pixels are spooled in
    the folder ``spool`` (the system's temporary folder if None)."""
    with spooled(pixels, spool) as image:
        if icc_profile:
            image.set_type(pyvips.GValue.blob_type, "icc-profile-data", icc_profile)
        target = pyvips.TargetCustom()
        target.on_write(out.write)
        image.jpegsave_target(
            target,
            Q=quality,
            subsample_mode="on" if image.bands == 3 else "off",
            optimize_coding=False,
            keep="icc" if icc_profile else "none",
        )


@contextmanager
def spooled(pixels: Pixels, spool: str | None = None) -> Iterator[pyvips.Image]:
    """``pixels`` (L or RGB) as a libvips image over a raw file in the folder ``spool``
    (the system's temporary folder if None), written a band of rows at a time; gone after."""
    width, height = pixels.size
    bands = len(pixels.mode)
    with tempfile.NamedTemporaryFile(dir=spool, suffix=".raw") as raw:
        for band in row_bands(pixels, max(1, BAND_BYTES // (width * bands))):
            raw.write(band.tobytes())
        raw.flush()
        image = pyvips.Image.rawload(raw.name, width, height, bands)
        yield image.copy(interpretation="srgb" if bands == 3 else "b-w")
