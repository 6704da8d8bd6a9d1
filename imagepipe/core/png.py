"""PNG written on several threads, and band by band as its rows become known, in any order.

Pillow writes a PNG on one thread, and that is time
every job pays after its last tile. A PNG's pixels are one zlib stream, but a deflate stream may
be made of pieces compressed on their own: each band of rows is deflated raw and ended on a byte
boundary with a sync flush (the bottom band finished instead), and the pieces are joined between
a zlib header and the Adler-32 of all the rows, combined from each band's own. zlib lets go of the
GIL while it compresses, so bands are deflated in parallel, or (``collector``) each as soon as
its tiles are in, while the rest of the job still runs.

Levels 1 to 3 deflate with ISA-L (``isal``, Intel's igzip: on photographs about four times as fast
as zlib's level 1, and smaller); 0 (stored) and 4 to 9 with zlib. Either makes a standard stream.

PNG filters each row on its own terms: a band's first row is stored as it is ("none"), and every
other row minus the row above ("up", which suits photographs and numpy applies to a whole band at
once), so no band needs another's pixels.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from isal import isal_zlib
from PIL import Image

from .pipeline import Pixels

SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOUR_TYPES = {"L": 0, "RGB": 2, "LA": 4, "RGBA": 6}
NONE, UP = 0, 2  # row filters: the bytes as they are; each byte minus the byte above it
ZLIB_HEADER = b"\x78\x01"  # deflate, 32 KiB window, no dictionary; (0x7801 % 31 == 0)
STRIP_BYTES = 4 << 20  # about this much raw image per band
STREAMED_STRIP_BYTES = 1 << 20  # ... when written as read (``write_png``): a few bands are held at once
ADLER_BASE = 65521


@dataclass(frozen=True)
class Band:
    """Some rows deflated on their own: a piece of the zlib stream, and their Adler-32 and length."""

    deflated: bytes
    adler: int
    length: int


def encode_png(
    image: Image.Image,
    compress_level: int = 1,
    icc_profile: bytes | None = None,
    threads: int = 4,
    strip_bytes: int = STRIP_BYTES,
) -> bytes:
    """``image`` (L, LA, RGB or RGBA) as a PNG, its rows deflated on ``threads`` threads in bands
    of about ``strip_bytes``."""
    pixels = rows_of(image)
    per_band = max(1, strip_bytes // max(1, pixels.shape[1]))
    tops = range(0, image.height, per_band)

    def deflate(top: int) -> Band:
        bottom = top + per_band
        return deflate_band(pixels[top:bottom], compress_level, last=bottom >= image.height)

    with ThreadPoolExecutor(max(1, threads)) as pool:
        bands = list(pool.map(deflate, tops))
    return png_file(image.size, image.mode, bands, icc_profile)


def rows_of(image: Image.Image) -> np.ndarray:
    """The image's bytes, one row of the array per row of pixels; a mode PNG can't hold is refused."""
    if image.mode not in COLOUR_TYPES:
        raise ValueError(f"can't write mode {image.mode} as PNG here")
    return np.asarray(image).reshape(image.height, -1)


def deflate_band(pixels: np.ndarray, compress_level: int, last: bool) -> Band:
    """Rows of pixels (one array row per image row) as a piece of the PNG's zlib stream; ``last``
    for the band at the bottom of the image, which ends the stream."""
    rows = filtered_rows(pixels)
    library = isal_zlib if 1 <= compress_level <= 3 else zlib
    compressor = library.compressobj(compress_level, library.DEFLATED, -15)
    flush = library.Z_FINISH if last else library.Z_SYNC_FLUSH
    deflated = compressor.compress(rows.data) + compressor.flush(flush)
    return Band(deflated, zlib.adler32(rows.data), rows.nbytes)


def filtered_rows(pixels: np.ndarray) -> np.ndarray:
    """Each row as PNG stores it: the filter's byte, then the row (the first) or the row minus
    the row above (the others)."""
    rows = np.empty((pixels.shape[0], pixels.shape[1] + 1), np.uint8)
    rows[:, 0] = UP
    rows[0, 0] = NONE
    rows[0, 1:] = pixels[0]
    np.subtract(pixels[1:], pixels[:-1], out=rows[1:, 1:])  # uint8: wraps modulo 256, as PNG wants
    return rows


def png_file(size: tuple[int, int], mode: str, bands: list[Band], icc_profile: bytes | None = None) -> bytes:
    """The PNG whose rows are ``bands``, top to bottom (the last deflated with ``last``)."""
    out = io.BytesIO()
    write_bands(out, size, mode, bands, icc_profile)
    return out.getvalue()


def write_bands(
    out: BinaryIO, size: tuple[int, int], mode: str, bands: Iterable[Band], icc_profile: bytes | None = None
) -> None:
    """The PNG whose rows are ``bands`` (deflated, top to bottom) written to ``out`` as they come,
    each an IDAT chunk of its own: the file is never joined in memory."""
    writer = BandWriter(out, size, mode, icc_profile)
    for band in bands:
        writer.add(band)
    writer.end()


class BandWriter:
    """A PNG written to ``out`` a deflated band at a time, top to bottom, as each is given."""

    def __init__(self, out: BinaryIO, size: tuple[int, int], mode: str, icc_profile: bytes | None) -> None:
        self.out, self.adler = out, 1
        out.write(head(size, mode, icc_profile) + chunk(b"IDAT", ZLIB_HEADER))

    def add(self, band: Band) -> None:
        self.adler = adler32_combine(self.adler, band.adler, band.length)
        data = band.deflated  # megabytes: written as it is, not joined with its chunk's head
        self.out.write(struct.pack(">I", len(data)) + b"IDAT")
        self.out.write(data)
        self.out.write(struct.pack(">I", zlib.crc32(data, zlib.crc32(b"IDAT"))))

    def end(self) -> None:
        """After the bottom band (deflated with ``last``): the stream's checksum and the file's end."""
        self.out.write(chunk(b"IDAT", struct.pack(">I", self.adler)) + chunk(b"IEND", b""))


def write_png(
    pixels: Pixels,
    out: BinaryIO,
    compress_level: int = 1,
    icc_profile: bytes | None = None,
    threads: int = 4,
    strip_bytes: int = STREAMED_STRIP_BYTES,
) -> None:
    """``pixels`` as a PNG written to ``out`` band by band, each band's rows read (``crop``) in
    turn and deflated on one of ``threads`` threads, a few bands ahead, then written as an IDAT
    chunk of its own: the file is never held, and only those few bands of the pixels."""
    width, height = pixels.size
    per_band = max(1, strip_bytes // max(1, width * len(pixels.mode)))

    def deflated() -> Iterator[Band]:
        with ThreadPoolExecutor(max(1, threads)) as pool:
            ahead: deque[Future[Band]] = deque()
            for top in range(0, height, per_band):
                bottom = min(top + per_band, height)
                rows = rows_of(pixels.crop((0, top, width, bottom)))
                ahead.append(pool.submit(deflate_band, rows, compress_level, bottom == height))
                while ahead and (len(ahead) > max(1, threads) or bottom == height):
                    yield ahead.popleft().result()

    write_bands(out, pixels.size, pixels.mode, deflated(), icc_profile)


def head(size: tuple[int, int], mode: str, icc_profile: bytes | None) -> bytes:
    """The file's signature and the chunks ahead of its pixels."""
    header = struct.pack(">IIBBBBB", *size, 8, COLOUR_TYPES[mode], 0, 0, 0)
    profile = [chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc_profile))] if icc_profile else []
    return SIGNATURE + b"".join([chunk(b"IHDR", header), *profile])


def adler32_combine(first: int, second: int, second_length: int) -> int:
    """The Adler-32 of two byte strings joined, from each one's and the second's length.

    Adler-32 keeps A = 1 + the sum of the bytes and B = the sum of A after each byte (mod 65521).
    Joined, the second string's bytes add to the first's A, less the 1 both start from; and each
    of its bytes' A values is the second's own plus the first's A - 1, so B gains the second's B
    and ``second_length`` times (first A - 1).
    """
    a1, b1 = first & 0xFFFF, first >> 16
    a2, b2 = second & 0xFFFF, second >> 16
    a = (a1 + a2 - 1) % ADLER_BASE
    b = (b1 + b2 + second_length * (a1 - 1)) % ADLER_BASE
    return (b << 16) | a


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))
