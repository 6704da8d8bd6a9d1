"""Tile codecs: how a tile's pixels travel in a Kafka message.

A 12-byte header and the pixel bytes as Pillow holds them; the producer's compression
(``KAFKA_COMPRESSION``, lz4 by default) applies on top. ``bench/codec.py`` compares it with PNG
tiles through the real broker (``bench/README.md``).
"""

from __future__ import annotations

import struct

from PIL import Image

MAGIC = b"IPT1"
_HEADER = struct.Struct("!4sBxHI")  # magic, mode code, pad, width (<=65535), height
_MODES = ("L", "LA", "RGB", "RGBA")


class CodecError(ValueError):
    """Bytes that are not a tile this codec wrote."""


def encode_raw(image: Image.Image) -> bytes:
    if image.mode not in _MODES:
        raise CodecError(f"unsupported tile mode {image.mode}")
    width, height = image.size
    if width > 0xFFFF:
        raise CodecError(f"tile too wide: {width}")
    return _HEADER.pack(MAGIC, _MODES.index(image.mode), width, height) + image.tobytes()


def decode_raw(data: bytes) -> Image.Image:
    if len(data) < _HEADER.size:
        raise CodecError("tile payload shorter than its header")
    magic, mode_code, width, height = _HEADER.unpack_from(data)
    if magic != MAGIC or mode_code >= len(_MODES):
        raise CodecError("not a raw tile payload")
    mode = _MODES[mode_code]
    expected = width * height * len(mode)
    pixels = memoryview(data)[_HEADER.size :]
    if len(pixels) != expected:
        raise CodecError(f"tile payload has {len(pixels)} pixel bytes, expected {expected}")
    # Pillow reads any buffer; its annotation names bytes and bytearray only.
    return Image.frombuffer(mode, (width, height), pixels, "raw", mode, 0, 1).copy()  # type: ignore[arg-type]


encode_tile = encode_raw
decode_tile = decode_raw
