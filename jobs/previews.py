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

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from imagepipe.core.codec import as_image, decode_tile
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
    reducer = Reducer(pixels.size, pixels.mode, bound)
    width, height = pixels.size
    for top in range(0, height, reducer.step):
        reducer.add(pixels.crop((0, top, width, min(top + reducer.step, height))))
    return reducer.fitted()


class Reducer:
    """An image of ``size`` reduced to fit ``bound`` × ``bound`` from its bands of rows, given top
    to bottom, of any heights: ``Image.reduce`` by a whole factor to about twice the size, a band at
    a time, then resampled (what ``Image.thumbnail`` does, without the whole image). Pillow reduces
    an image with alpha through a premultiplied copy of all of it, hundreds of megabytes for a large
    original. Rows are reduced in blocks that start at multiples of the factor (a band's last
    rows wait for the next band's first), so every block averages the same pixels as in one go."""

    def __init__(self, size: tuple[int, int], mode: str, bound: int) -> None:
        width, height = size
        self.factor = max(1, max(size) // (2 * bound))
        self.bound, self.height, self.mode = bound, height, mode
        self.out = Image.new(mode, (-(-width // self.factor), -(-height // self.factor)))
        # Rows reduced at a time: whole blocks, about ``BAND_BYTES`` of full-size pixels.
        self.step = self.factor * max(1, BAND_BYTES // (width * len(mode) * self.factor))
        self.top = 0  # rows reduced so far
        self.carried: Image.Image | None = None  # rows after them, fewer than a block

    def add_rows(self, rows: np.ndarray) -> None:
        """A band held as numpy (rows, columns, bands), reduced ``step`` rows at a time."""
        for top in range(0, len(rows), self.step):
            self.add(as_image(self.mode, rows[top : top + self.step]))

    def add(self, band: Image.Image) -> None:
        if self.carried is not None:
            joined = Image.new(self.mode, (band.width, self.carried.height + band.height))
            joined.paste(self.carried, (0, 0))
            joined.paste(band, (0, self.carried.height))
            band, self.carried = joined, None
        bottom = self.top + band.height
        whole = band.height if bottom >= self.height else band.height // self.factor * self.factor
        if whole < band.height:
            self.carried = band.crop((0, whole, band.width, band.height))
        if whole:
            rows = band.crop((0, 0, band.width, whole)) if whole < band.height else band
            reduced = rows.reduce(self.factor) if self.factor > 1 else rows
            self.out.paste(reduced, (0, self.top // self.factor))
            self.top += whole

    def fitted(self) -> Image.Image:
        if self.top < self.height:
            given = self.top + (self.carried.height if self.carried else 0)
            raise ValueError(f"{given} of the image's {self.height} rows were given")
        image = self.out
        image.thumbnail((self.bound, self.bound))
        return image


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
