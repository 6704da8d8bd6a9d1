"""Tile codecs: how a tile's pixels travel in a Kafka message.

A 12-byte header and the pixel bytes as Pillow holds them; the producer's compression
(``KAFKA_COMPRESSION``, none by default) applies on top. ``bench/codec.py`` compares it with PNG
tiles through the real broker (``bench/README.md``).
"""

from __future__ import annotations

import struct

import numpy as np
from PIL import Image

MAGIC = b"IPT1"
_HEADER = struct.Struct("!4sBxHI")  # magic, mode code, pad, width (<=65535), height
_MODES = ("L", "LA", "RGB", "RGBA")


class CodecError(ValueError):
    """Bytes that are not a tile this codec wrote."""


def encode_raw(image: Image.Image) -> bytes:
    if image.mode not in _MODES:
        raise CodecError(f"unsupported tile mode {image.mode}")
    return _header(image.mode, *image.size) + image.tobytes()


def encode_array(mode: str, pixels: np.ndarray) -> bytes:
    """A tile from its pixels as numpy holds them (rows, columns[, bands]), with no Pillow copy."""
    return b"".join(array_parts(mode, pixels))


def array_parts(mode: str, pixels: np.ndarray) -> list[bytes | memoryview]:
    """``encode_array``'s bytes in the pieces they are joined from (its header, then the pixels,
    contiguous), for a message to join them once with its own header (``messages.pack``)."""
    shaped = pixels.size == pixels.shape[0] * pixels.shape[1] * len(mode)
    if mode not in _MODES or pixels.dtype != np.uint8 or not shaped:
        raise CodecError(f"can't encode a {pixels.dtype} array of {pixels.shape} as {mode}")
    return [_header(mode, pixels.shape[1], pixels.shape[0]), np.ascontiguousarray(pixels).data]


def _header(mode: str, width: int, height: int) -> bytes:
    if width > 0xFFFF:
        raise CodecError(f"tile too wide: {width}")
    return _HEADER.pack(MAGIC, _MODES.index(mode), width, height)


def decode_array(data: bytes) -> tuple[str, np.ndarray]:
    """A tile's mode and its pixels as an array (rows, columns, bands) viewing ``data``: no copy."""
    if len(data) < _HEADER.size:
        raise CodecError("tile payload shorter than its header")
    magic, mode_code, width, height = _HEADER.unpack_from(data)
    if magic != MAGIC or mode_code >= len(_MODES):
        raise CodecError("not a raw tile payload")
    mode = _MODES[mode_code]
    expected = width * height * len(mode)
    if len(data) - _HEADER.size != expected:
        raise CodecError(f"tile payload has {len(data) - _HEADER.size} pixel bytes, expected {expected}")
    return mode, np.frombuffer(data, np.uint8, expected, _HEADER.size).reshape(height, width, len(mode))


def decode_raw(data: bytes) -> Image.Image:
    return as_image(*decode_array(data)).copy()


def as_image(mode: str, pixels: np.ndarray) -> Image.Image:
    """Pixels held as numpy (rows, columns, bands) as a Pillow image of ``mode``."""
    height, width = pixels.shape[:2]
    # Pillow reads any buffer; its annotation names bytes and bytearray only.
    return Image.frombuffer(mode, (width, height), np.ascontiguousarray(pixels).data, "raw", mode, 0, 1)  # type: ignore[arg-type]


encode_tile = encode_raw
decode_tile = decode_raw
