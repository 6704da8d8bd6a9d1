"""Small images for pages: thumbnails, the before/after pair, and tiles of the live mosaic.

Previews of the original and the result are made once and kept in storage;
tile previews are made from the stored tile while the job runs.
"""

from __future__ import annotations

import io

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from imagepipe.core.codec import decode_tile
from imagepipe.core.normalise import normalise

from .models import Job, Tile


class NoPreview(Exception):
    """The file can't be shown small (it is missing, or Pillow refuses it): said, never a 500."""


SIZES = (160, 1000)  # history thumbnails, the job page's before/after
TILE_PREVIEW_MAX = 256


def encode(image: Image.Image) -> tuple[bytes, str]:
    """JPEG for opaque previews, PNG when there is alpha to show."""
    buffer = io.BytesIO()
    if image.mode in ("LA", "RGBA"):
        image.save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue(), "image/png"
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue(), "image/jpeg"


def job_preview(job: Job, which: str, size: int) -> tuple[bytes, str]:
    """The original or the result, fitted in ``size`` × ``size``; made once, then read from storage."""
    for content_type, extension in (("image/jpeg", "jpg"), ("image/png", "png")):
        name = f"previews/{job.pk}/{which}-{size}.{extension}"
        if default_storage.exists(name):
            with default_storage.open(name, "rb") as handle:
                return handle.read(), content_type
    field = job.original if which == "original" else job.result
    try:
        with field.open("rb") as handle, Image.open(handle) as source:
            source.draft("RGB", (size, size))  # JPEG decodes at a fraction of full size
            image = normalise(source)
    except FileNotFoundError:
        raise NoPreview(f"the {which} is missing from storage") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise NoPreview(f"the {which} could not be decoded for a preview: {exc}") from None
    image.thumbnail((size, size))
    image.info.pop("icc_profile", None)  # a thumbnail needn't carry a profile of megabytes
    data, content_type = encode(image)
    extension = "png" if content_type == "image/png" else "jpg"
    default_storage.save(f"previews/{job.pk}/{which}-{size}.{extension}", ContentFile(data))
    job.count_stored(len(data))
    return data, content_type


def tile_preview(tile: Tile) -> tuple[bytes, str]:
    with tile.result.open("rb") as handle:
        image = decode_tile(handle.read())
    image.thumbnail((TILE_PREVIEW_MAX, TILE_PREVIEW_MAX))
    return encode(image)


def stored(job: Job) -> list[str]:
    """The names of the job's stored previews."""
    try:
        _, files = default_storage.listdir(f"previews/{job.pk}")
    except FileNotFoundError:
        return []
    return [f"previews/{job.pk}/{name}" for name in files]
