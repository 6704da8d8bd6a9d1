"""A job's stages: what each stage's tiles are cut from, and moving the job on once a stage's
tiles are all in (to the next stage, or to assembly).

Stage 0 is cut from the stored original, read a band of rows at a time as its tiles are cut
(``imagepipe.core.bands``; a kind not read in bands is decoded whole), and the original's
previews are made from it; a later stage from the stage before it, read from its stored tiles as
its own are cut (or those tiles as they are, when they are exactly its tiles). What the dispatcher
holds of them is bounded by ``DISPATCH_MEMORY_MB``: an original that would not fit whole (of a kind
not read in bands) fails its job, saying so.
"""

from __future__ import annotations

import io
import logging
import time
from collections import OrderedDict

from django.conf import settings
from PIL import Image

from imagepipe.core.bands import Bands, Unstreamable, whole_bytes
from imagepipe.core.normalise import normalise
from imagepipe.core.operations import chain_halo
from imagepipe.core.pipeline import Pixels, leading_table
from jobs import previews, storage, uploads
from jobs.events import push_status
from jobs.models import Job
from jobs.submission import SubmissionError
from jobs.uploads import ACCEPTED_FORMATS

from . import assembly

logger = logging.getLogger(__name__)


def move_on(job: Job, stages: set[int]) -> None:
    """After tiles of ``stages`` were recorded: assemble the job if every tile is in, else start
    the next stage of each stage now complete (only one caller wins either)."""
    if job.tiles_done == job.tiles_total:
        assembly.assemble_job(job)
        return
    for stage in sorted(stages):
        if stage_finished(job, stage):
            advance_stage(job, stage)


class OriginalError(ValueError):
    """The stored original does not decode, or not to the image its upload's header declared, or
    not within the dispatcher's memory budget (or a stored result's header can't be read)."""


def original_pixels(job: Job) -> Pixels:
    """The stored original, normalised: read in bands if it is of a kind that can be (most are:
    ``imagepipe.core.bands``), else decoded whole, within ``DISPATCH_MEMORY_MB``."""
    header = stored_header(str(job.original.name))
    try:
        pixels: Pixels = Bands(
            lambda: storage.Stream(str(job.original.name)), header, directory=settings.SPOOL_DIR
        )
    except Unstreamable:
        pixels = decode_original(job)
    except OSError as exc:
        raise OriginalError(f"the original could not be decoded: {exc}") from None
    if (pixels.mode, pixels.size) != (job.mode, (job.width, job.height)):
        width, height = pixels.size
        raise OriginalError(
            f"the original decodes to a {width}×{height} {pixels.mode} image, not the "
            f"{job.width}×{job.height} {job.mode} image its header declared"
        )
    return pixels


def stored_header(name: str, what: str = "the original") -> Image.Image:
    """Pillow's header of a stored image, ``what`` it is (a PNG's read with every chunk but its
    pixels, so an orientation written after them is known), no pixel decoded."""
    stream = storage.Stream(name)
    try:
        header = Image.open(stream, formats=list(ACCEPTED_FORMATS))  # type: ignore[arg-type]  # a file
        header = uploads.png_metadata(stream) if header.format == "PNG" else header
        Image.Image.getexif(header)  # read now, while the file is open (a TIFF's is read lazily)
        return header
    except (OSError, SyntaxError, ValueError, SubmissionError, Image.DecompressionBombError) as exc:
        raise OriginalError(f"{what} could not be read: {exc}") from None
    finally:
        stream.close()


def decode_original(job: Job) -> Image.Image:
    """The stored original decoded whole and normalised (a kind not read in bands), if it fits
    ``DISPATCH_MEMORY_MB``.

    The web process reads only headers and structure (``jobs.uploads``), so what only decoding
    shows is found here, before any tile is cut: a stream cut short or garbled behind right
    checksums, a 16-bit image's values out of range. It is read whole first: a decoder's OSError
    is the file's fault, storage's is ``StorageUnavailable``.
    """
    needed = whole_bytes(job.mode, (job.width, job.height))
    if needed > settings.DISPATCH_MEMORY_MB << 20:
        raise OriginalError(
            f"the original, of a kind not read in bands, would take {needed >> 20} MB decoded whole, "
            f"over the dispatcher's {settings.DISPATCH_MEMORY_MB} MB (DISPATCH_MEMORY_MB)"
        )
    data = storage.read(str(job.original.name))
    try:
        opened = Image.open(io.BytesIO(data), formats=list(ACCEPTED_FORMATS))
        opened.load()
        return normalise(opened)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise OriginalError(f"the original could not be decoded: {exc}") from None


def first_pass(pixels: Pixels) -> Image.Image:
    """The original reduced to its largest preview, read top to bottom (a JPEG at a fraction of its
    size: ``Bands.for_preview``): what only decoding shows (a stream garbled behind right checksums
    or cut short, a 16-bit image's values out of range) fails the job here, before any of its tiles
    is sent."""
    bound = max(previews.SIZES)
    try:
        return previews.fitted(pixels.for_preview(bound) if isinstance(pixels, Bands) else pixels, bound)
    except (OSError, ValueError) as exc:
        raise OriginalError(f"the original could not be decoded: {exc}") from None


def advance_stage(job: Job, finished: int) -> None:
    """Move the job to its next stage once ``finished`` is complete (only one caller wins);
    the dispatcher then sends the next stage's tiles."""
    if job.claim_next_stage(finished):
        logger.info("job %s: stage %d of %d queued", job.pk, finished + 1, job.last_stage)
        job.refresh_from_db(fields=["stage", "status", "tiles_done"])
        push_status(job)  # the job's page turns to the new stage's tiles


def stage_finished(job: Job, stage: int) -> bool:
    """Every tile of ``stage`` is in and a later stage waits for them."""
    return stage < job.last_stage and not job.tiles.pending(stage).exists()


class StoredTiles:
    """A stage's input left as the stage before stored it, tile for tile: when the stage needs no
    halo and nothing moved its tiles, each of its tiles is one the stage before returned, already
    in the tile codec, so nothing is rebuilt, cut or encoded (a statistics chain's last stage)."""

    def __init__(self, names: dict[int, str]) -> None:
        self.names = names  # this stage's tile index -> the stored result it is

    def pixels(self, index: int) -> bytes:
        return storage.read(self.names[index])


StageInput = tuple[Pixels | StoredTiles, list[int] | None]


def stage_input(job: Job, stage: int) -> StageInput:
    """What a stage's tiles are cut from: the stored original for stage 0, else the previous stage
    (its stored tiles as they are, if they are this stage's tiles)."""
    started = time.perf_counter()
    found: StageInput
    if stage and (stored := stored_tiles(job, stage)):
        found, how = (stored, assembly.next_stage_table(job, stage - 1)), "is the stored tiles before it"
    elif stage:
        found, how = assembly.next_stage_input(job, stage - 1), "read from the tiles before it"
    else:
        pixels = original_pixels(job)
        if not previews.is_stored(job, "original"):  # made once, though the input may be read again
            previews.store(job, "original", first_pass(pixels))
        found = (pixels, leading_table(job.stages[0], pixels))
        how = "read in bands from the original" if isinstance(pixels, Bands) else "decoded from the original"
    logger.info("job %s stage %d input %s in %.2f s", job.pk, stage, how, time.perf_counter() - started)
    return found


def stored_tiles(job: Job, stage: int) -> StoredTiles | None:
    """The stage's tiles as the stage before stored them, if each is exactly one of those: the
    stage reads no halo and what every one of its tiles reads (its box, or a resampling stage's
    window) is where a tile before landed."""
    if chain_halo(job.stages[stage]):
        return None
    before = job.tiles.filter(stage=stage - 1).only("job", "stage", "x", "y", "width", "height", "result")
    landed = {job.placed_box(tile): str(tile.result.name) for tile in before}
    names = {}
    for spec in job.stage_tiles(stage):
        if spec.read not in landed:
            return None
        names[spec.index] = landed[spec.read]
    return StoredTiles(names)


class StageImages:
    """The last few stage inputs used: what bounds the dispatcher's memory.

    Jobs take turns in the window, so each keeps its input here while it is sent: an original read
    in bands holds only its current rows; an input decoded or rebuilt whole holds all of it. Past
    ``size`` inputs, or past ``DISPATCH_MEMORY_MB`` of them held together, the least recently used
    is let go and read again from storage when its job's turn comes.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.budget = settings.DISPATCH_MEMORY_MB << 20
        self.images: OrderedDict[tuple[str, int], StageInput] = OrderedDict()

    def keep_only(self, wanted: set[tuple[str, int]]) -> None:
        """Drop the inputs no dispatchable job needs any more (finished, cancelled, paused, moved on)."""
        for key in [key for key in self.images if key not in wanted]:
            self.drop(key)

    def fitting(self, keys: list[tuple[str, int]]) -> set[tuple[str, int]]:
        """Of ``keys`` (in scheduling order), those held or with room to be: the rest would evict."""
        room = self.size - sum(key in self.images for key in keys)
        fresh = [key for key in keys if key not in self.images][: max(room, 0)]
        return {key for key in keys if key in self.images} | set(fresh)

    def get(self, job: Job) -> StageInput:
        key = (str(job.pk), job.stage)
        if key in self.images:
            self.images.move_to_end(key)
            return self.images[key]
        found = self.images[key] = stage_input(job, job.stage)
        while len(self.images) > 1 and (len(self.images) > self.size or self.held() > self.budget):
            self.drop(next(iter(self.images)))
        return found

    def held(self) -> int:
        """The bytes of pixels the inputs hold now."""
        return sum(held_bytes(source) for source, _ in self.images.values())

    def drop(self, key: tuple[str, int]) -> None:
        source, _ = self.images.pop(key)
        if isinstance(source, Bands):
            source.close()


def held_bytes(source: Pixels | StoredTiles) -> int:
    if isinstance(source, Image.Image):
        return whole_bytes(source.mode, source.size)
    return getattr(source, "nbytes", 0)  # read in bands, or from tiles: what it holds now
