"""A job's stages: what each stage's tiles are cut from, and moving the job on once a stage's
tiles are all in (to the next stage, or to assembly).

Stage 0 is cut from the stored original, decoded here (and the original's previews made from it);
a later stage from the stage before it, rebuilt from its stored tiles (or those tiles as they are,
when they are exactly its tiles).
"""

from __future__ import annotations

import io
import logging
import time
from collections import OrderedDict

from PIL import Image

from imagepipe.core.normalise import normalise
from imagepipe.core.operations import chain_halo
from imagepipe.core.pipeline import leading_table
from jobs import previews, storage
from jobs.events import push_status
from jobs.models import Job
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
    """The stored original does not decode, or not to the image its upload's header declared."""


def decode_original(job: Job) -> Image.Image:
    """The stored original, decoded and normalised, checked against what its upload's header said.

    The web process reads only headers and structure (``jobs.uploads``), so what only decoding
    shows is found here, before any tile is cut: a stream cut short or garbled behind right
    checksums, a 16-bit image's values out of range, a size or mode other than the header's. It is
    read whole first: a decoder's OSError is the file's fault, storage's is ``StorageUnavailable``.
    """
    data = storage.read(str(job.original.name))
    try:
        opened = Image.open(io.BytesIO(data), formats=list(ACCEPTED_FORMATS))
        opened.load()
        image = normalise(opened)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise OriginalError(f"the original could not be decoded: {exc}") from None
    if (image.mode, image.size) != (job.mode, (job.width, job.height)):
        raise OriginalError(
            f"the original decodes to a {image.width}×{image.height} {image.mode} image, not the "
            f"{job.width}×{job.height} {job.mode} image its header declared"
        )
    return image


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


StageInput = tuple[Image.Image | StoredTiles, list[int] | None]


def stage_input(job: Job, stage: int) -> StageInput:
    """What a stage's tiles are cut from: the stored original for stage 0, else the previous stage
    (its stored tiles as they are, if they are this stage's tiles)."""
    started = time.perf_counter()
    found: StageInput
    if stage and (stored := stored_tiles(job, stage)):
        found, how = (stored, assembly.next_stage_table(job, stage - 1)), "is the stored tiles before it"
    elif stage:
        found, how = assembly.next_stage_input(job, stage - 1), "rebuilt from the tiles before it"
    else:
        image = decode_original(job)
        if not previews.is_stored(job, "original"):  # made once, though the input may be decoded again
            previews.store(job, "original", image)
        found, how = (image, leading_table(job.stages[0], image)), "decoded from the original"
    logger.info("job %s stage %d input %s in %.2f s", job.pk, stage, how, time.perf_counter() - started)
    return found


def stored_tiles(job: Job, stage: int) -> StoredTiles | None:
    """The stage's tiles as the stage before stored them, if each is exactly one of those: the
    stage reads no halo and every one of its tiles is where a tile before landed."""
    if chain_halo(job.stages[stage]):
        return None
    before = job.tiles.filter(stage=stage - 1).only("stage", "x", "y", "width", "height", "result")
    landed = {job.placed_box(tile): str(tile.result.name) for tile in before}
    names = {}
    for spec in job.stage_tiles(stage):
        if spec.core not in landed:
            return None
        names[spec.index] = landed[spec.core]
    return StoredTiles(names)


class StageImages:
    """The last few stage inputs used, decoded: the bound on the dispatcher's memory.

    Jobs take turns in the window, so each keeps its decoded input here while it is sent;
    past ``size`` inputs the least recently used is dropped and read again from storage.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: OrderedDict[tuple[str, int], StageInput] = OrderedDict()

    def keep_only(self, wanted: set[tuple[str, int]]) -> None:
        """Drop the inputs no dispatchable job needs any more (finished, cancelled, paused, moved on)."""
        for key in [key for key in self.images if key not in wanted]:
            del self.images[key]

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
        while len(self.images) > self.size:
            self.images.popitem(last=False)
        return found
