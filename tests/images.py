"""Test images: the committed real photographs and small in-memory factories."""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image, ImageCms, ImageFile

DATA = Path(__file__).parent / "data"

# A real ICC profile, for uploads and results that carry one.
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def photo(name: str = "coffee.png") -> Image.Image:
    with Image.open(DATA / name) as image:
        image.load()
        return image


def noise(width: int, height: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    """Random pixels: the harshest case for seams, since every pixel differs."""
    rng = random.Random(seed)
    return Image.frombytes(mode, (width, height), rng.randbytes(width * height * len(mode)))


def encoded(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, kind, data and its right checksum."""
    return struct.pack("!I", len(data)) + kind + data + struct.pack("!I", zlib.crc32(kind + data))


def png_file(width: int, height: int, pixels: bytes, *extra: bytes) -> bytes:
    """A hand-made 8-bit RGB PNG: ``pixels`` as its IDAT whatever they hold, then ``extra`` chunks."""
    header = struct.pack("!IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunks = png_chunk(b"IHDR", header) + png_chunk(b"IDAT", pixels) + b"".join(extra)
    return b"\x89PNG\r\n\x1a\n" + chunks + png_chunk(b"IEND", b"")


@contextmanager
def decoding_watched() -> Iterator[list[tuple]]:
    """Every decode Pillow begins in the block: each image's load, which every plugin's decoding
    goes through, as ("load", format), and each decoder Pillow makes, as ("decoder", name, its
    configuration: a JPEG's is its scale). The real functions run; they are only watched."""
    begun: list[tuple] = []
    load, make = ImageFile.ImageFile.load, Image._getdecoder

    def loading(image, *args, **kwargs):
        begun.append(("load", image.format))
        return load(image, *args, **kwargs)

    def decoder(mode, name, args, extra=()):
        begun.append(("decoder", name, extra))
        return make(mode, name, args, extra)

    ImageFile.ImageFile.load, Image._getdecoder = loading, decoder  # type: ignore[method-assign, assignment]
    try:
        yield begun
    finally:
        ImageFile.ImageFile.load, Image._getdecoder = load, make  # type: ignore[method-assign]


class Cropped:
    """An image that records the boxes read from it: what a band-by-band writer asked for."""

    def __init__(self, image: Image.Image) -> None:
        self.image, self.mode, self.size = image, image.mode, image.size
        self.boxes: list[tuple[int, int, int, int]] = []

    def crop(self, box: tuple[int, int, int, int]) -> Image.Image:
        self.boxes.append(box)
        return self.image.crop(box)


def garbled_tiff(width: int, height: int) -> bytes:
    """An LZW TIFF whose strip is garbage past its first bytes, at its declared length: only
    decoding finds it out (the request, which reads the directory alone, accepts it)."""
    whole = bytearray(encoded(noise(width, height), "TIFF", compression="tiff_lzw"))
    tags = Image.open(io.BytesIO(bytes(whole))).tag_v2  # type: ignore[attr-defined]
    start, length = tags[273][0], tags[279][0]
    whole[start + 10 : start + length] = b"\xff" * (length - 10)
    return bytes(whole)


def jpeg_scan(data: bytes) -> bytes:
    """A JPEG from its first start-of-scan marker on: the entropy-coded pixels, past the header."""
    return data[data.index(b"\xff\xda") :]


def tiled_tiff(
    image: Image.Image, tile: tuple[int, int], compression: str = "deflate", orientation: int = 1
) -> bytes:
    """A tiled TIFF of ``image`` (L, LA, RGB or RGBA), written by libvips: Pillow writes only
    striped ones (its ``tile`` option is ignored). ``orientation`` goes in its EXIF tag."""
    import pyvips

    bands = len(image.getbands())
    vips = pyvips.Image.new_from_memory(image.tobytes(), image.width, image.height, bands, "uchar")
    vips = vips.copy(interpretation="b-w" if bands < 3 else "srgb")
    if orientation != 1:
        vips.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    return vips.tiffsave_buffer(tile=True, tile_width=tile[0], tile_height=tile[1], compression=compression)
