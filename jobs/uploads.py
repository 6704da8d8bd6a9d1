"""Checking an uploaded image and its options before any work starts."""

from __future__ import annotations

import json
import unicodedata
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from django.conf import settings
from PIL import Image, UnidentifiedImageError

from imagepipe.core.normalise import NormaliseError, normalise
from imagepipe.core.operations import ChainError, Step, parse_chain
from imagepipe.core.output import FORMATS

ACCEPTED_FORMATS = {
    "PNG": ".png",
    "JPEG": ".jpg",
    "GIF": ".gif",
    "TIFF": ".tif",
    "WEBP": ".webp",
    "BMP": ".bmp",
}


class UploadError(ValueError):
    """A submission refused before anything was stored; ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def parse_operations(raw: Any) -> list[Step]:
    if isinstance(raw, (str, bytes)):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise UploadError(f"operations is not valid JSON: {exc}") from None
    try:
        return parse_chain(raw)
    except ChainError as exc:
        raise UploadError(str(exc)) from None


def parse_tile_size(raw: Any) -> int:
    if raw in (None, ""):
        return settings.TILE_SIZE_DEFAULT
    try:
        size = int(raw)
    except (TypeError, ValueError):
        raise UploadError("tile_size must be a whole number") from None
    if not settings.TILE_SIZE_MIN <= size <= settings.TILE_SIZE_MAX:
        raise UploadError(f"tile_size must be between {settings.TILE_SIZE_MIN} and {settings.TILE_SIZE_MAX}")
    return size


def parse_output(name: Any, quality: Any, mode: str) -> tuple[str, int | None]:
    """The result's format and quality; a format that can't hold the result is refused."""
    name = (name or "png").lower() if isinstance(name, str) or name is None else name
    if name not in FORMATS:
        raise UploadError(f"output_format must be one of {', '.join(FORMATS)}")
    if name == "jpeg" and mode in ("LA", "RGBA"):
        raise UploadError("JPEG cannot carry the alpha band of this image; choose png, webp or tiff")
    if quality in (None, ""):
        return name, None
    try:
        value = int(quality)
    except (TypeError, ValueError):
        raise UploadError("quality must be a whole number from 1 to 100") from None
    if not 1 <= value <= 100:
        raise UploadError("quality must be a whole number from 1 to 100")
    if name not in ("jpeg", "webp"):
        raise UploadError("quality applies to jpeg and webp only")
    return name, value


def open_image(upload) -> tuple[Image.Image, str]:
    """Decode an uploaded file; returns the loaded image and its file extension."""
    if upload is None:
        raise UploadError("an image file is required (field 'image')")
    if upload.size == 0:
        raise UploadError("the uploaded file is empty")
    if upload.size > settings.MAX_UPLOAD_BYTES:
        raise UploadError(f"the file is larger than {settings.MAX_UPLOAD_BYTES} bytes", status=413)
    upload.seek(0)
    try:
        image = Image.open(upload, formats=list(ACCEPTED_FORMATS))
    except UnidentifiedImageError:
        names = ", ".join(sorted(ACCEPTED_FORMATS))
        raise UploadError(f"the file is not an image in a supported format ({names})", status=415) from None
    except Image.DecompressionBombError as exc:  # Pillow's own header check, for the very largest
        raise UploadError(f"the image declares too many pixels: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UploadError(f"the image header is corrupt: {exc}") from None
    check_dimensions(*image.size)
    if getattr(image, "n_frames", 1) > 1:
        raise UploadError("animated or multi-frame images are not supported")
    extension = ACCEPTED_FORMATS[image.format]
    try:
        image.load()
        return normalise(image), extension
    except NormaliseError as exc:
        raise UploadError(str(exc)) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UploadError(f"the image is truncated or corrupt: {exc}") from None


def check_dimensions(width: int, height: int) -> None:
    """Checked from the header, before a single pixel is decoded (decompression bombs)."""
    if max(width, height) > settings.MAX_IMAGE_SIDE:
        raise UploadError(
            f"the image is {width}×{height}; no side may exceed {settings.MAX_IMAGE_SIDE} pixels"
        )
    if width * height > settings.MAX_IMAGE_PIXELS:
        raise UploadError(f"the image has {width * height} pixels; the limit is {settings.MAX_IMAGE_PIXELS}")


def clean_filename(name: str | None) -> str:
    """A display name only: never used as a storage path."""
    name = PureWindowsPath(PurePosixPath(name or "").name).name
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    return name[:200] or "image"
