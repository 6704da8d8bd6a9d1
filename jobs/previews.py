"""Small images for pages: thumbnails, the before/after pair, and tiles of the live mosaic.

Previews of the original and the result are made off the request, by the processes that hold
the pixels anyway: the dispatcher reduces the original it decodes to cut the first tiles, the
assembler the result it has just built (``store``). A request only serves a stored preview, or
says it is not ready yet (``stored_preview``): no web process decodes an original or a result.
Previews missing from before (``manage.py make_previews``) are made from the files, with reduced
decoding (``from_file``). Tile previews are made from the stored tile while the job runs: a tile
is at most ``TILE_SIZE_MAX`` across and travels raw, so there is nothing to decode but its bytes.
"""

from __future__ import annotations

import io
import logging

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from imagepipe.core.codec import decode_tile
from imagepipe.core.normalise import normalise
from imagepipe.core.pipeline import Pixels

from .models import Job, Tile
from .uploads import ACCEPTED_FORMATS

logger = logging.getLogger(__name__)

SIZES = (160, 1000)  # history thumbnails, the job page's before/after
TILE_PREVIEW_MAX = 256
BAND_BYTES = 4 << 20  # full-size pixels reduced at a time at most (see reduced)
ALPHA = ("LA", "RGBA")


class NotReady(Exception):
    """No preview is stored (yet): said to the page, which shows a placeholder."""


def preview_name(job: Job, which: str, size: int) -> str:
    """Where a preview is kept: JPEG, or PNG for an image with alpha (known from the job's modes)."""
    mode = job.mode if which == "original" else job.output_mode
    return f"previews/{job.pk}/{which}-{size}.{'png' if mode in ALPHA else 'jpg'}"


def stored_preview(job: Job, which: str, size: int) -> tuple[bytes, str]:
    """The stored preview and its content type; NotReady if it has not been made."""
    name = preview_name(job, which, size)
    try:
        with default_storage.open(name, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise NotReady(f"the {which}'s preview is not ready yet") from None
    return data, "image/png" if name.endswith(".png") else "image/jpeg"


def is_stored(job: Job, which: str) -> bool:
    return all(default_storage.exists(preview_name(job, which, size)) for size in SIZES)


def store(job: Job, which: str, pixels: Pixels) -> bool:
    """Make and store the job's previews of ``which`` from its full-size pixels; whether they were.

    Each size is reduced from the one above it, and the largest from the pixels a band at a time,
    so no copy of the whole image is made. A preview that can't be stored is logged and left out:
    the job goes on, and its page shows the placeholder. Stored after the job's row went (a delete
    while they were made), they are deleted again: the row's deletion listed the folder before.
    """
    try:
        image: Pixels = pixels
        for size in sorted(SIZES, reverse=True):
            image = fitted(image, size)
            _save(job, preview_name(job, which, size), encode(image)[0])
    except (OSError, ValueError) as exc:
        logger.warning("job %s: the %s's previews were not made: %s", job.pk, which, exc)
        return False
    if not Job.objects.filter(pk=job.pk).exists():
        for name in stored_names(job.pk):
            default_storage.delete(name)
        return False
    return True


def from_file(job: Job, which: str) -> bool:
    """Make the previews of ``which`` from its stored file: a JPEG decoded at a fraction of its
    size (``Image.draft``), any other format decoded whole and reduced."""
    field = job.original if which == "original" else job.result
    try:
        with field.open("rb") as handle, Image.open(handle, formats=list(ACCEPTED_FORMATS)) as source:
            wanted = fitted_size(source.size, max(SIZES))
            source.draft(None, (2 * wanted[0], 2 * wanted[1]))  # the final resample needs twice the pixels
            image = normalise(source)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        logger.warning("job %s: the %s could not be read for its previews: %s", job.pk, which, exc)
        return False
    return store(job, which, image)


def fitted_size(size: tuple[int, int], bound: int) -> tuple[int, int]:
    """``size`` scaled to fit in ``bound`` × ``bound``, never enlarged."""
    width, height = size
    if max(width, height) <= bound:
        return width, height
    if width >= height:
        return bound, max(1, round(height * bound / width))
    return max(1, round(width * bound / height)), bound


def fitted(pixels: Pixels, bound: int) -> Image.Image:
    """The pixels fitted in ``bound`` × ``bound``: reduced by a whole factor to about twice the size,
    then resampled (what ``Image.thumbnail`` does, without decoding or copying the whole)."""
    factor = max(1, max(pixels.size) // (2 * bound))
    image = reduced(pixels, factor)
    image.thumbnail((bound, bound))
    return image


def reduced(pixels: Pixels, factor: int) -> Image.Image:
    """``Image.reduce(factor)`` of the pixels, a band of rows at a time: Pillow reduces an image with
    alpha through a premultiplied copy of all of it, hundreds of megabytes for a large original.
    Bands start at multiples of ``factor``, so every block averages the same pixels as in one go,
    and hold about ``BAND_BYTES`` of the full-size pixels (a whole row of blocks at the least)."""
    width, height = pixels.size
    out = Image.new(pixels.mode, (-(-width // factor), -(-height // factor)))
    step = factor * max(1, BAND_BYTES // (width * len(pixels.mode) * factor))
    for top in range(0, height, step):
        band = pixels.crop((0, top, width, min(top + step, height)))
        out.paste(band.reduce(factor) if factor > 1 else band, (0, top // factor))
    return out


def encode(image: Image.Image) -> tuple[bytes, str]:
    """JPEG for opaque previews, PNG when there is alpha to show; never the image's ICC profile
    (a thumbnail needn't carry a profile of megabytes)."""
    buffer = io.BytesIO()
    if image.mode in ALPHA:
        image.save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue(), "image/png"
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue(), "image/jpeg"


def _save(job: Job, name: str, data: bytes) -> None:
    default_storage.delete(name)  # a retried job's result is made again: keep the name
    default_storage.save(name, ContentFile(data))
    job.count_stored(len(data))


def tile_preview(tile: Tile) -> tuple[bytes, str]:
    with tile.result.open("rb") as handle:
        image = decode_tile(handle.read())
    image.thumbnail((TILE_PREVIEW_MAX, TILE_PREVIEW_MAX))
    return encode(image)


def stored_names(job_id) -> list[str]:
    """The names of the job's stored previews."""
    try:
        _, files = default_storage.listdir(f"previews/{job_id}")
    except FileNotFoundError:
        return []
    return [f"previews/{job_id}/{name}" for name in files]
