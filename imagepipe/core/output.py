"""Result encodings: PNG by default, JPEG, WebP or TIFF on request (the collector writes PNG and
TIFF results of any size band by band: ``png.write_png``, ``tiff.write_tiff``)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from PIL import Image

from .png import encode_png
from .tiff import write_tiff


@dataclass(frozen=True)
class Format:
    name: str
    pillow: str
    extension: str
    content_type: str
    alpha: bool  # can it carry an alpha band?


FORMATS = {
    f.name: f
    for f in (
        Format("png", "PNG", ".png", "image/png", True),
        Format("jpeg", "JPEG", ".jpg", "image/jpeg", False),
        Format("webp", "WEBP", ".webp", "image/webp", True),
        Format("tiff", "TIFF", ".tif", "image/tiff", True),
        Format("avif", "AVIF", ".avif", "image/avif", True),
        Format("heic", "HEIF", ".heic", "image/heic", True),  # with pillow-heif's opener (jobs.apps)
        # A DeepZoom pyramid of exact PNG tiles, one zip (``deepzoom``): no Pillow format.
        Format("deepzoom", "", ".zip", "application/zip", True),
    )
}
DEFAULT_JPEG_QUALITY = 90  # and AVIF's and HEIC's
LOSSY = ("jpeg", "avif", "heic")  # always lossy: a quality, DEFAULT_JPEG_QUALITY unless given
QUALITY = ("jpeg", "webp", "avif", "heic")  # the formats a quality applies to
WHOLE = ("webp", "avif", "heic")  # encoded from the whole image, which must fit RESULT_WHOLE_MB


def encode(
    image: Image.Image,
    name: str,
    quality: int | None = None,
    icc_profile: bytes | None = None,
    png_compress_level: int = 1,
    png_threads: int = 4,
) -> bytes:
    """The result in format ``name``; WebP is lossless unless a quality is given. A PNG is
    written on ``png_threads`` threads (``png.py``)."""
    if name == "png":
        return encode_png(image, png_compress_level, icc_profile, png_threads)
    if name == "tiff":
        out = io.BytesIO()
        write_tiff(image, out, icc_profile, png_threads)
        return out.getvalue()
    options: dict[str, Any] = {"icc_profile": icc_profile} if icc_profile else {}
    if name in LOSSY:
        options["quality"] = quality or DEFAULT_JPEG_QUALITY
    elif name == "webp":
        options.update({"quality": quality} if quality else {"lossless": True})
    buffer = io.BytesIO()
    image.save(buffer, format=FORMATS[name].pillow, **options)
    return buffer.getvalue()
