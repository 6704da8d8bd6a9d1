"""Each job's result pasted together in the collector as its last stage's tiles are recorded.

Assembling from the stored tiles after the last one (``assembly.StageTiles``) reads every tile
back and then writes the whole PNG, time every job pays after its last tile while nothing else runs.
Here each tile is pasted the moment it is recorded, and each band of rows is deflated
(``png.deflate_band``, on a thread) as soon as its tiles are in, so when the last tile comes only
its band is left to deflate before the file is joined.

A canvas is only a shortcut: the stored tiles stay the record. One that misses a tile (the
collector restarted mid-job, or the job's results moved to another collector) is never used, and
the job is assembled from storage as before. Canvases are held within ``COLLECTOR_CANVAS_MB``;
a job that does not fit is assembled from storage too.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from django.conf import settings
from PIL import Image

from imagepipe.core.png import COLOUR_TYPES, Band, deflate_band, write_bands
from jobs.models import Job, Tile

logger = logging.getLogger(__name__)
_deflating = ThreadPoolExecutor(max(1, settings.RESULT_PNG_THREADS), thread_name_prefix="deflate")


class Canvas:
    """One job's last stage: its pixels as they come, and the PNG bands already deflated."""

    def __init__(self, job: Job) -> None:
        width, height = job.output_size
        self.mode, self.height = job.output_mode, height
        self.png = job.output_format == "png"
        self.pixels = np.zeros((height, width, len(self.mode)), np.uint8)
        last = job.last_stage
        self.boxes = {spec.index: job.placed(last, spec.core) for spec in job.stage_tiles(last)}
        # Tiles waiting, per band of rows (geometric steps move tiles, but a grid stays a grid).
        self.waiting: dict[tuple[int, int], set[int]] = defaultdict(set)
        for index, box in self.boxes.items():
            self.waiting[box.top, box.bottom].add(index)
        self.deflated: dict[int, Future[Band]] = {}

    @property
    def complete(self) -> bool:
        return not any(self.waiting.values())

    def paste(self, index: int, image: Image.Image) -> None:
        box = self.boxes[index]
        band = self.waiting[box.top, box.bottom]
        if index not in band:
            return
        self.pixels[box.top : box.bottom, box.left : box.right] = np.asarray(image).reshape(
            box.height, box.width, len(self.mode)
        )
        band.discard(index)
        if self.png and not band:
            rows = self.pixels[box.top : box.bottom].reshape(box.height, -1)
            level, last = settings.RESULT_PNG_COMPRESS_LEVEL, box.bottom == self.height
            self.deflated[box.top] = _deflating.submit(deflate_band, rows, level, last)

    def write_png(self, out, icc_profile: bytes | None) -> None:
        """The PNG of the canvas written to ``out`` from its deflated bands, one at a time."""
        bands = (self.deflated[top].result() for top in sorted(self.deflated))
        write_bands(out, (self.pixels.shape[1], self.height), self.mode, bands, icc_profile)

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.height

    def image(self) -> Image.Image:
        return self.crop((0, 0, *self.size))

    def crop(self, box: tuple[int, int, int, int]) -> Image.Image:
        """Part of the canvas as an image of its own (the previews reduce it a band at a time)."""
        left, top, right, bottom = box
        pixels = self.pixels[top:bottom, left:right]
        return Image.fromarray(pixels[:, :, 0] if len(self.mode) == 1 else pixels, self.mode)


class Canvases:
    """The canvases this collector holds, within ``COLLECTOR_CANVAS_MB``."""

    def __init__(self) -> None:
        self.held: dict[str, Canvas] = {}
        self.refused: set[str] = set()  # jobs begun elsewhere, or too big: assembled from storage

    def paste(self, job: Job, tiles: list[tuple[Tile, Image.Image]], done_before: int) -> None:
        """Paste tiles just recorded; ``done_before``: the job's tiles recorded before them. A canvas
        is begun only with the last stage's first tiles: one begun later would never be complete."""
        key = str(job.pk)
        tiles = [(tile, image) for tile, image in tiles if tile.stage == job.last_stage]
        if not tiles or key in self.refused:
            return
        canvas = self.held.get(key)
        if canvas is None:
            earlier = sum(len(job.stage_tiles(stage)) for stage in range(job.last_stage))
            if done_before != earlier or not self.fits(job):
                self.refused.add(key)
                return
            canvas = self.held[key] = Canvas(job)
        try:
            for tile, image in tiles:
                canvas.paste(tile.index, image)
        except Exception:  # a shortcut that fails is dropped, never the tile: storage has it
            logger.exception("pasting tiles of job %s failed; it will be assembled from storage", key)
            del self.held[key]
            self.refused.add(key)

    def fits(self, job: Job) -> bool:
        width, height = job.output_size
        wanted = width * height * len(job.output_mode)
        held = sum(canvas.pixels.nbytes for canvas in self.held.values())
        return job.output_mode in COLOUR_TYPES and held + wanted <= settings.COLLECTOR_CANVAS_MB << 20

    def take(self, job: Job) -> Canvas | None:
        """The job's canvas, if complete, given up by the collector; None: assemble from storage."""
        self.refused.discard(str(job.pk))
        canvas = self.held.pop(str(job.pk), None)
        return canvas if canvas is not None and canvas.complete else None

    def forget_finished(self) -> None:
        """Let go of the canvases of jobs that ended without being assembled (failed, cancelled,
        deleted): the collector's sweep calls it."""
        known = set(self.held) | self.refused
        running = {
            str(pk) for pk in Job.objects.unfinished().filter(pk__in=known).values_list("pk", flat=True)
        }
        for key in set(self.held) - running:
            del self.held[key]
        self.refused &= running


CANVASES = Canvases()
