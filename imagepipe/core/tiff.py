"""A tiled TIFF written a row of tiles at a time: a result of any size, never held whole.

Each 512 × 512 tile is deflated on its own (Adobe deflate, what libtiff and Pillow read) as its row
of tiles is read, written, and forgotten but for its offset and length, which go into the one
directory written after the pixels. Past 4 GB of file the offsets need 64 bits: then the file is
a BigTIFF, which Pillow, libtiff and libvips read too.
"""

from __future__ import annotations

import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

import numpy as np

from .pipeline import Pixels

TILE = 512
BIG = 4 << 30  # past this (of raw pixels: a deflated file is smaller), a BigTIFF
SHORT, LONG, UNDEFINED, LONG8 = 3, 4, 7, 16
PHOTOMETRIC = {"L": 1, "LA": 1, "RGB": 2, "RGBA": 2}  # black is zero; RGB
UNASSOCIATED_ALPHA = 2


def write_tiff(
    pixels: Pixels, out: BinaryIO, icc_profile: bytes | None = None, threads: int = 4, level: int = 6
) -> None:
    """``pixels`` (L, LA, RGB or RGBA) as a tiled TIFF written to ``out``, from its start."""
    width, height = pixels.size
    bands = len(pixels.mode)
    side = tile_side(width, height)
    big = width * height * bands > BIG
    out.write(b"II+\x00\x08\x00\x00\x00" + bytes(8) if big else b"II*\x00" + bytes(4))
    offsets, counts = [], []
    with ThreadPoolExecutor(max(1, threads)) as pool:
        for top in range(0, height, side):
            band = np.asarray(pixels.crop((0, top, width, min(top + side, height))))
            band = band.reshape(band.shape[0], width, bands)
            tiles = [_full_tile(band, left, side) for left in range(0, width, side)]
            for data in pool.map(lambda tile: zlib.compress(tile, level), tiles):
                offsets.append(out.tell())
                counts.append(len(data))
                out.write(data)
    tags: list[tuple[int, int, list[int] | bytes]] = [
        (256, LONG, [width]),
        (257, LONG, [height]),
        (258, SHORT, [8] * bands),
        (259, SHORT, [8]),  # Adobe deflate
        (262, SHORT, [PHOTOMETRIC[pixels.mode]]),
        (277, SHORT, [bands]),
        (284, SHORT, [1]),  # samples interleaved
        (322, LONG, [side]),
        (323, LONG, [side]),
        (324, LONG8 if big else LONG, offsets),
        (325, LONG8 if big else LONG, counts),
    ]
    if pixels.mode in ("LA", "RGBA"):
        tags.append((338, SHORT, [UNASSOCIATED_ALPHA]))
    if icc_profile:
        tags.append((34675, UNDEFINED, icc_profile))
    _directory(out, tags, big)


def tile_side(width: int, height: int) -> int:
    """TILE, or for a smaller image the least multiple of 16 (TIFF's rule) that covers its longer
    side: libvips refuses to read a file whose tiles are much larger than the image."""
    return min(TILE, -(-max(width, height) // 16) * 16)


def _full_tile(band: np.ndarray, left: int, side: int) -> bytes:
    """The tile at ``left`` of a row of tiles, padded with zeros to a whole tile (TIFF's rule)."""
    piece = band[:, left : left + side]
    if piece.shape[:2] == (side, side):
        return piece.tobytes()
    full = np.zeros((side, side, band.shape[2]), np.uint8)
    full[: piece.shape[0], : piece.shape[1]] = piece
    return full.tobytes()


def _directory(out: BinaryIO, tags: list[tuple[int, int, list[int] | bytes]], big: bool) -> None:
    """The image file directory at the end of ``out``, its values that do not fit in an entry
    after it, and the header's pointer to it patched in."""
    formats = {SHORT: "H", LONG: "I", LONG8: "Q"}
    inline = 8 if big else 4
    entry_size = 20 if big else 12
    start = out.tell() + out.tell() % 2  # word-aligned
    out.write(bytes(start - out.tell()))
    extra_at = start + (8 if big else 2) + len(tags) * entry_size + (8 if big else 4)
    entries, extra = [], b""
    for tag, kind, values in tags:
        if isinstance(values, bytes):
            data = values
        else:
            data = struct.pack(f"<{len(values)}{formats[kind]}", *values)
        if len(data) <= inline:
            field = data.ljust(inline, b"\x00")
        else:
            field = struct.pack("<Q" if big else "<I", extra_at + len(extra))
            extra += data + bytes(len(data) % 2)
        head = struct.pack("<HHQ" if big else "<HHI", tag, kind, len(values))
        entries.append(head + field)
    count = struct.pack("<Q" if big else "<H", len(entries))
    out.write(count + b"".join(entries) + bytes(8 if big else 4) + extra)
    out.seek(8 if big else 4)
    out.write(struct.pack("<Q" if big else "<I", start))
    out.seek(0, 2)
