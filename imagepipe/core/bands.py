"""An image file read a band of rows at a time: how the dispatcher cuts tiles from an original of
any size while holding only the rows its next tiles and their halos need.

libvips (``pyvips``) decodes the file; each band of rows is then brought to the working mode as
``normalise`` brings the whole image, so a band's pixels are the same rows of Pillow's whole-image
decode. That equality was measured, not assumed (``tests/core/test_bands.py`` checks it for every
kind in ``STREAMED`` and every EXIF orientation): libvips and Pillow decode JPEG with the same
libjpeg arithmetic, and PNG, TIFF and lossless WebP hold the values themselves. Other kinds (GIF,
BMP, a 32-bit TIFF, a 16-bit colour PNG, a grey PNG with a transparent value) are decoded whole by
Pillow, as before, and must fit the dispatcher's memory budget (``whole_bytes``).

Upright (or mirrored) images are read in sequential mode: libvips decodes each row once, top to
bottom, holding a few strips, and a band that starts above the rows held opens the file again.
An orientation that turns or flips the image upside down is read in random mode, where libvips
keeps the decoded image (past ``VIPS_DISC_THRESHOLD``, 100 MB by default, in a temporary file on
disk, not in memory) and turns each band out of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import numpy as np
from PIL import Image

from .bandfile import BandFile
from .libvips import pyvips  # set up to hold as little as it can
from .normalise import ORIENTATION, sixteen_to_eight, target_mode
from .pipeline import Pixels

# The (format, Pillow mode) pairs read in bands: each proven equal to Pillow's decode.
STREAMED = {
    "JPEG": ("L", "RGB", "CMYK"),
    "PNG": ("1", "L", "LA", "RGB", "RGBA", "P", "I;16", "I;16B"),
    "TIFF": ("1", "L", "LA", "RGB", "RGBA", "CMYK", "I;16", "I;16B"),
    "WEBP": ("RGB", "RGBA"),
}
# Pillow's exif_transpose of each orientation, as libvips operations applied in order.
TURNS: dict[int, tuple[str, ...]] = {
    2: ("fliphor",),
    3: ("rot180",),
    4: ("flipver",),
    5: ("rot270", "flipver"),
    6: ("rot90",),
    7: ("rot90", "flipver"),
    8: ("rot270",),
}
ROW_LOCAL = (1, 2)  # orientations whose rows come out in file order: read in sequential mode
READ_ROWS = 16  # rows decoded per fetch
BLOCK = 128  # columns per block of the band file: a tile and its halo are read in a few
SOURCE_BLOCK = 1 << 20  # bytes read from the file per call libvips makes
CHUNK_BYTES = 16 << 20  # of a tiled TIFF's tiles decoded at once, about


class Readable(Protocol):
    """A file as ``Bands`` reads it: a storage handle (``jobs.storage.Stream``), or any binary file."""

    def read(self, size: int = -1, /) -> bytes: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def close(self) -> None: ...


class Unstreamable(ValueError):
    """The file is of a kind not read in bands (or its decode is not what its header said)."""


def orientation(header: Image.Image) -> int:
    """The EXIF orientation ``normalise`` will apply, from a header (no pixel decoded)."""
    value = Image.Image.getexif(header).get(ORIENTATION, 1)
    return value if value in TURNS else 1


def upright(image: pyvips.Image, turn: int) -> pyvips.Image:
    """``image`` turned and flipped as its EXIF orientation ``turn`` says (``orientation``)."""
    for operation in TURNS.get(turn, ()):
        image = getattr(image, operation)()
    return image


def streamable(header: Image.Image) -> bool:
    """Whether a file with this Pillow header is read in bands."""
    if header.mode not in STREAMED.get(str(header.format), ()):
        return False
    # libvips turns a grey or RGB PNG's transparent colour into an alpha band; Pillow leaves it out.
    return not (header.mode in ("L", "RGB") and "transparency" in header.info)


def tiff_tiles(header: Image.Image) -> tuple[int, int]:
    """A tiled TIFF's tile width and height, from its header; (0, 0) for any other file."""
    if header.format != "TIFF":
        return (0, 0)
    tags = getattr(header, "tag_v2", {})
    return (int(tags.get(322, 0) or 0), int(tags.get(323, 0) or 0))


def chunk_columns(tiles: tuple[int, int], bands: int) -> int:
    """Columns of a tiled TIFF decoded at a time (0: not tiled): whole tiles and whole band-file
    blocks, whose rows of tiles, two deep, take about ``CHUNK_BYTES`` of libvips' cache."""
    width, height = tiles
    if not (width and height):
        return 0
    unit = math.lcm(width, BLOCK)
    return unit * max(1, CHUNK_BYTES // (2 * height * unit * bands))


def pixel_array(pixels: Pixels, box: tuple[int, int, int, int]) -> np.ndarray:
    """The pixels of ``box`` as an array (rows, columns, bands): straight from the rows held if
    ``pixels`` are ``Bands``, with no Pillow image made between; else cropped and viewed."""
    if isinstance(pixels, Bands):
        return pixels.window(box)
    left, top, right, bottom = box
    return np.asarray(pixels.crop(box)).reshape(bottom - top, right - left, len(pixels.mode))


def whole_bytes(mode: str, size: tuple[int, int]) -> int:
    """What an image of the working ``mode`` and ``size`` takes decoded whole."""
    return size[0] * size[1] * len(mode)


class Bands:
    """The rows of an image file, normalised, as an image whose ``crop`` reads only what it needs.

    ``open_file`` opens the file afresh each time it is called (a storage handle, or a path's);
    ``header`` is Pillow's header of it (``Image.open``, or a PNG's chunks read without its pixels,
    which also know an eXIf written after them). ``crop`` returns exactly what
    ``normalise(Image.open(file)).crop(box)`` would. The rows of the last crop wait on disk, in
    ``directory`` (``bandfile.BandFile``): memory holds ``READ_ROWS`` of them while they are
    decoded, and the crop. Crops should move down the image: the rows above the lowest crop's top
    are let go, and a crop above them decodes the file from its start again (counted in
    ``reopened``).
    """

    def __init__(
        self,
        open_file: Callable[[], Readable],
        header: Image.Image,
        shrink: int = 1,
        directory: str | None = None,
    ) -> None:
        if not streamable(header):
            raise Unstreamable(f"a {header.format} {header.mode} image is not read in bands")
        self.open_file, self.header, self.shrink, self.directory = open_file, header, shrink, directory
        self.turn = orientation(header)
        self.mode = target_mode(header)
        self.tiles = tiff_tiles(header)  # a tiled TIFF's tile (width, height)
        self.chunk = chunk_columns(self.tiles, len(self.mode)) if self.turn in ROW_LOCAL else 0
        self.raw_mode = ""
        self.size = (0, 0)
        self.reopened = -1
        self.failure: BaseException | None = None  # what the file raised while libvips read it
        self.handle: Readable | None = None
        self.band: BandFile | None = None  # a ring on disk: rows [top, next_row) are in it
        self.top = 0  # the first row held
        self.next_row = 0  # the next row libvips will decode (read in sequential mode: held up to it)
        self._open()

    @property
    def nbytes(self) -> int:
        """The pixels held in memory between crops: none (the rows wait on disk)."""
        return 0

    def for_preview(self, bound: int) -> Bands:
        """The same file read for a preview fitted in ``bound`` × ``bound``: a JPEG at 1/2, 1/4 or
        1/8 of its size (libvips' shrink on load, still at least twice ``bound`` across), which
        skips most of the work of a full decode but still decodes every byte of the stream, so one
        cut short or garbled fails as it would at full size; another kind as it is."""
        shrink = max(self.size) // (2 * bound)
        if self.header.format != "JPEG" or shrink < 2:
            return self
        return Bands(self.open_file, self.header, min(8, 1 << (shrink.bit_length() - 1)), self.directory)

    def crop(self, box: tuple[int, int, int, int]) -> Image.Image:
        left, top, right, bottom = box
        return Image.frombytes(self.mode, (right - left, bottom - top), self.window(box))

    def window(self, box: tuple[int, int, int, int]) -> np.ndarray:
        """The pixels of ``box`` as an array (rows, columns, bands): what ``crop`` holds, with no
        Pillow image made (the dispatcher encodes a tile straight from it)."""
        left, top, right, bottom = box
        width, height = self.size
        if not (0 <= left < right <= width and 0 <= top < bottom <= height):
            raise ValueError(f"{box} is outside the {width}×{height} image")
        self.hold(top, bottom)
        assert self.band is not None
        return self.band.read(top, bottom, left, right)

    def hold(self, top: int, bottom: int) -> None:
        """Hold rows ``[top, bottom)``, letting go of those above ``top``."""
        if self.handle is None or (self.sequential and top < self.top):
            self._open()
        if not self.sequential:
            if self.band is None or not (self.top <= top and bottom <= self.next_row):
                self._begin(top, bottom, keep=False)
                self._decode(top, bottom)
            return
        if bottom <= self.next_row:  # held: rows [self.top, self.next_row)
            return
        if self.chunk:  # a tiled TIFF: to the end of the row of its tiles, decoded once
            bottom = min(-(-bottom // self.tiles[1]) * self.tiles[1], self.size[1])
        self._begin(top, bottom)
        if self.next_row < top:
            self._decode(self.next_row, top, keep=False)
        self._decode(self.next_row, bottom)

    def _begin(self, top: int, bottom: int, keep: bool = True) -> None:
        """Room for rows ``[top, bottom)`` in the band file, a ring: the rows held of them stay
        where they are (``keep``, read in sequential mode: rows ``[self.top, self.next_row)``), and
        only a taller band than any before makes a larger one, the rows held moved into it."""
        if self.band is None or self.band.height < bottom - top:
            held = self.band
            self.band = BandFile(bottom - top, self.size[0], len(self.mode), self.directory, ring=True)
            if held is not None and keep:
                for start in range(max(top, self.top), min(bottom, self.next_row), READ_ROWS):
                    self._put(held.read(start, min(start + READ_ROWS, bottom, self.next_row)), start)
            if held is not None:
                held.close()
        self.top = top

    def _put(self, rows: np.ndarray, at: int, left: int = 0) -> None:
        """``rows`` (rows, columns, bands) into the band file as the image's rows from ``at``, its
        columns from ``left`` (a block's first), block by block."""
        assert self.band is not None
        for start in range(0, rows.shape[1], BLOCK):
            self.band.write(left + start, at, rows[:, start : start + BLOCK])

    def _open(self) -> None:
        self.close()
        self.reopened += 1
        self.sequential = self.turn in ROW_LOCAL
        self.handle = self.open_file()
        # A tiled TIFF is read in random mode (libvips reads its tiles, not the whole image),
        # a chunk of columns at a time (``_decode``).
        image = self._load(self.handle, "random" if self.chunk or not self.sequential else "sequential")
        # Held beside its region: the region does not keep the Python image alive, and the image
        # collected under it crashes the process.
        self.image, self.size = image, (image.width, image.height)
        self.region = pyvips.Region.new(image)
        self.top, self.next_row = 0, 0

    def _load(self, handle: Readable, access: str) -> pyvips.Image:
        """The file open in ``handle``, as libvips reads it, turned upright, checked against its
        header's mode."""
        source = pyvips.SourceCustom()
        source.on_read(self._reader(handle))
        source.on_seek(self._seeker(handle))
        pyvips.vips_lib.vips_error_clear()  # what a load before logged without failing
        shrunk = {"shrink": self.shrink} if self.shrink > 1 else {}
        try:
            image = upright(
                pyvips.Image.new_from_source(source, "", access=access, fail_on="error", **shrunk), self.turn
            )
        except pyvips.Error as exc:
            raise self._failed(exc) from None
        self.raw_mode = _raw_mode(image)
        if _working_mode(self.raw_mode) != self.mode:
            found = self.raw_mode or f"{image.bands} {image.format} bands"
            raise Unstreamable(f"the file decodes to {found}, not to what its header says ({self.mode})")
        return image

    def close(self) -> None:
        """Let go of the file and the rows held (a crop after this opens the file again)."""
        if self.handle is not None:
            self.handle.close()
            self.handle = None
        if self.band is not None:
            self.band.close()
            self.band = None
        self.top = self.size[1]  # above every row: the next crop opens the file again

    def _decode(self, top: int, bottom: int, keep: bool = True) -> None:
        """Rows ``[top, bottom)`` decoded and normalised into the band file (which must begin at or
        above ``top``), ``READ_ROWS`` at a time, so libvips holds no more; ``keep=False``: decoded
        and dropped (rows skipped on the way down)."""
        if self.chunk:
            if keep:
                for left in range(0, self.size[0], self.chunk):
                    self._decode_chunk(top, bottom, left, min(left + self.chunk, self.size[0]))
            self.next_row = bottom
            return
        for start in range(top, bottom, READ_ROWS):
            end = min(start + READ_ROWS, bottom)
            fresh = self._fetch(start, end)
            if keep:
                self._put(fresh, start)

    def _decode_chunk(self, top: int, bottom: int, left: int, right: int) -> None:
        """Rows ``[top, bottom)`` of columns ``[left, right)`` of a tiled TIFF into the band file,
        from an image opened for them alone: libvips caches two whole rows of a tiled TIFF's tiles
        (123 MB of 512-pixel tiles at 40,000 pixels wide), and an image read a chunk of columns at
        a time caches only the chunk's."""
        handle = self.open_file()
        try:
            image = self._load(handle, "random")
            region = pyvips.Region.new(image)
            for start in range(top, bottom, READ_ROWS):
                end = min(start + READ_ROWS, bottom)
                self._put(self._fetch(start, end, left, right, region), start, left)
            del region  # before its image
        finally:
            handle.close()

    def _fetch(
        self, top: int, bottom: int, left: int = 0, right: int = 0, region: pyvips.Region | None = None
    ) -> np.ndarray:
        """Rows ``[top, bottom)`` of columns ``[left, right)`` (all by default), normalised."""
        width = (right or self.size[0]) - left
        try:
            data = (region or self.region).fetch(left, top, width, bottom - top)
        except pyvips.Error as exc:
            raise self._failed(exc) from None
        self.next_row = bottom
        raw = _RAW[self.raw_mode]
        values = np.frombuffer(data, raw[0]).reshape(bottom - top, width, raw[1])
        if self.raw_mode == "I;16":
            return sixteen_to_eight(values)
        if self.raw_mode == "CMYK":
            return np.asarray(Image.frombytes("CMYK", (width, bottom - top), data).convert("RGB"))
        return values

    def _failed(self, exc: Exception) -> Exception:
        """The error to raise for what libvips reported: the file's own failure if reading it
        raised (storage away), else the decode's as OSError (the file's fault)."""
        if self.failure is not None:
            failure, self.failure = self.failure, None
            return failure  # type: ignore[return-value]
        return OSError(": ".join(line.strip() for line in str(exc).splitlines() if line.strip()))

    def _reader(self, handle: Readable) -> Callable[[int], bytes]:
        def read(size: int) -> bytes:
            try:
                return handle.read(min(size, SOURCE_BLOCK))
            except Exception as exc:  # noqa: BLE001 - raised again by _failed, outside libvips
                self.failure = exc
                return b""

        return read

    def _seeker(self, handle: Readable) -> Callable[[int, int], int]:
        def seek(offset: int, whence: int) -> int:
            try:
                return handle.seek(offset, whence)
            except Exception as exc:  # noqa: BLE001
                self.failure = exc
                return -1

        return seek


# libvips' decoded bands, by the Pillow mode that holds them: numpy type and band count.
_RAW = {
    "L": (np.uint8, 1),
    "LA": (np.uint8, 2),
    "RGB": (np.uint8, 3),
    "RGBA": (np.uint8, 4),
    "CMYK": (np.uint8, 4),
    "I;16": (np.uint16, 1),
}


def _raw_mode(image: pyvips.Image) -> str:
    """The Pillow mode that holds what libvips decodes ``image`` to; '' if none does."""
    if image.format == "ushort" and image.bands == 1:
        return "I;16"
    if image.format != "uchar":
        return ""
    if image.bands == 4 and image.interpretation == "cmyk":
        return "CMYK"
    return {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}.get(image.bands, "")


def _working_mode(raw_mode: str) -> str:
    return {"I;16": "L", "CMYK": "RGB"}.get(raw_mode, raw_mode)
