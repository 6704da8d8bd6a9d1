"""Each job's result put together in the collector as its last stage's tiles are recorded.

Assembling from the stored tiles after the last one (``assembly.StageTiles``) reads every tile
back and then writes the whole file: time every job pays after its last tile, while nothing else
runs. Here each tile is put into its band of rows the moment it is recorded. A PNG result is
written as it comes, and holds no band in memory: each tile's pixels go to its band's file on disk
(``BandSpool``, raw), and once a band and every band above it are complete, the band is read back
a strip of rows at a time, reduced for the result's previews, deflated on threads
(``png.deflate_band``) into the job's spool file, and deleted. So when the last tile comes only its
band is left to write; the collector's memory is a few strips whatever the image's width, and a
chain that turns or flips the image (its first tiles land at the bottom or down the side) waits on
disk, not in memory. Any other format keeps every band in memory until the job is assembled from
them, so must fit ``COLLECTOR_CANVAS_MB`` whole.

A canvas is only a shortcut: the stored tiles stay the record. One that misses a tile (the
collector restarted mid-job, or the job's results moved to another collector) is never used, and
the job is assembled from storage as before. Canvases in memory are held within
``COLLECTOR_CANVAS_MB`` (0: no canvas at all): a job that would not fit is assembled from storage.
"""

from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

import numpy as np
from django.conf import settings
from PIL import Image

from imagepipe.core.bandfile import BandFile
from imagepipe.core.codec import as_image
from imagepipe.core.png import COLOUR_TYPES, STRIP_BYTES, Band, BandWriter, deflate_band
from jobs import previews, storage
from jobs.models import Job, Tile

logger = logging.getLogger(__name__)
_THREADS = max(1, settings.RESULT_PNG_THREADS)
# Of a result's rows, at most this much is being deflated at once (strips of STRIP_BYTES, on up to
# _THREADS threads): with their filtered copies and output, what the collector holds for a PNG
# whatever the image's width. A narrow image's band is a strip or two; a 40,000-pixel one's is
# five, and four of them at once held 48 MB more at 1 GP than at 24 MP.
DEFLATING_BYTES = 2 * STRIP_BYTES
_deflating = ThreadPoolExecutor(_THREADS, thread_name_prefix="deflate")


class BandSpool(BandFile):
    """A PNG band on disk while its tiles come in, read back a strip at a time once complete."""

    def __init__(self, height: int, width: int, bands: int) -> None:
        super().__init__(height, width, bands, settings.SPOOL_DIR)
        self.top = 0  # the next row to read back

    def strip(self, rows: int) -> np.ndarray:
        """The next ``rows`` rows (fewer at the band's end), as an array (rows, width, bands)."""
        top, self.top = self.top, min(self.top + rows, self.height)
        return self.read(top, self.top)

    @property
    def done(self) -> bool:
        return self.top >= self.height


class Canvas:
    """One job's last stage: the bands of rows begun and not yet written, by (top, bottom)."""

    def __init__(self, job: Job) -> None:
        self.mode, self.size = job.output_mode, job.output_size
        self.streamed = job.output_format == "png"
        self.reserved = memory_of(job)  # what it may come to hold, counted against the budget
        last = job.last_stage
        self.boxes = {spec.index: job.placed(last, spec.core) for spec in job.stage_tiles(last)}
        # Tiles waiting, per band of rows (geometric steps move tiles, but a grid stays a grid).
        self.waiting: dict[tuple[int, int], set[int]] = {}
        for index, box in self.boxes.items():
            self.waiting.setdefault((box.top, box.bottom), set()).add(index)
        self.order = sorted(self.waiting)  # the bands, top to bottom
        self.written = 0  # of them, written to the spool (a PNG)
        self.bands: dict[tuple[int, int], np.ndarray] = {}  # in memory: a format not streamed
        self.spools: dict[tuple[int, int], BandSpool] = {}  # on disk: a PNG's
        self.unwritten: deque[BandSpool] = deque()  # a PNG's bands complete, in order, not all deflated
        if self.streamed:
            self.spool: BinaryIO = storage.spool(settings.SPOOL_DIR)
            self.png = BandWriter(self.spool, self.size, self.mode, bytes(job.icc_profile) or None)
            self.reducer = previews.Reducer(self.size, self.mode, max(previews.SIZES))
            self.strip = max(1, STRIP_BYTES // (self.size[0] * len(self.mode)))  # rows deflated at once
            self.at_once = max(
                1, min(_THREADS, DEFLATING_BYTES // (self.strip * self.size[0] * len(self.mode)))
            )
            self.deflating: deque[Future[Band]] = deque()  # strips of them, in order

    @property
    def complete(self) -> bool:
        return not any(self.waiting.values())

    @property
    def nbytes(self) -> int:
        """The pixels held in memory: the bands of a format not streamed (a PNG's are on disk)."""
        return sum(rows.nbytes for rows in self.bands.values())

    def paste(self, index: int, pixels: np.ndarray) -> None:
        """A tile's pixels (rows, columns, bands) into its band; a PNG's bands then ready written."""
        box = self.boxes[index]
        key = (box.top, box.bottom)
        if index not in self.waiting[key]:
            return
        tile = pixels.reshape(box.height, box.width, len(self.mode))
        if self.streamed:
            spool = self.spools.get(key)
            if spool is None:
                spool = self.spools[key] = BandSpool(box.height, self.size[0], len(self.mode))
            spool.write(box.left, 0, tile)
        else:
            rows = self.bands.get(key)
            if rows is None:
                rows = self.bands[key] = np.empty((box.height, self.size[0], len(self.mode)), np.uint8)
            rows[:, box.left : box.right] = tile
        self.waiting[key].discard(index)
        if self.streamed:
            self._write_ready()

    def _write_ready(self) -> None:
        """Queue each complete band with none missing above it, in order, then deflate them a
        strip at a time, as many strips at once as there are threads (within DEFLATING_BYTES), and
        write those done."""
        while self.written < len(self.order) and not self.waiting[self.order[self.written]]:
            self.unwritten.append(self.spools.pop(self.order[self.written]))
            self.written += 1
        self._deflate(wait=False)

    def _deflate(self, wait: bool) -> None:
        level = settings.RESULT_PNG_COMPRESS_LEVEL
        while True:
            while self.deflating and (self.deflating[0].done() or wait):
                self.png.add(self.deflating.popleft().result())
            if not self.unwritten or len(self.deflating) >= self.at_once:
                return
            spool = self.unwritten[0]
            strip = spool.strip(self.strip)
            self.reducer.add_rows(strip)
            if spool.done:
                self.unwritten.popleft().close()
            last = not self.unwritten and self.written == len(self.order)
            self.deflating.append(_deflating.submit(deflate_band, strip.reshape(len(strip), -1), level, last))

    def finished_png(self) -> BinaryIO:
        """The PNG, complete, in its spool (at its end); the canvas's every tile must be in."""
        self._deflate(wait=True)
        self.png.end()
        return self.spool

    def preview(self) -> Image.Image:
        """The result's largest preview, reduced from its bands as they were written (a PNG)."""
        return self.reducer.fitted()

    def crop(self, box: tuple[int, int, int, int]) -> Image.Image:
        """Part of the image from the bands held (all of them, for a format not streamed)."""
        left, top, right, bottom = box
        out = np.zeros((bottom - top, right - left, len(self.mode)), np.uint8)
        for (band_top, band_bottom), rows in self.bands.items():
            upper, lower = max(top, band_top), min(bottom, band_bottom)
            if upper < lower:
                out[upper - top : lower - top] = rows[upper - band_top : lower - band_top, left:right]
        return as_image(self.mode, out)

    def close(self) -> None:
        self.bands.clear()
        for spool in [*self.spools.values(), *self.unwritten]:
            spool.close()
        self.spools.clear()
        self.unwritten.clear()
        if self.streamed:
            for future in self.deflating:
                future.cancel()
            self.deflating.clear()
            self.spool.close()


class Canvases:
    """The canvases this collector holds, within ``COLLECTOR_CANVAS_MB``."""

    def __init__(self) -> None:
        self.held: dict[str, Canvas] = {}
        self.refused: set[str] = set()  # jobs begun elsewhere, or too big: assembled from storage

    def paste(self, job: Job, tiles: list[tuple[Tile, np.ndarray]], done_before: int) -> None:
        """Paste tiles just recorded; ``done_before``: the job's tiles recorded before them. A canvas
        is begun only with the last stage's first tiles: one begun later would never be complete."""
        key = str(job.pk)
        tiles = [(tile, pixels) for tile, pixels in tiles if tile.stage == job.last_stage]
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
            for tile, pixels in tiles:
                canvas.paste(tile.index, pixels)
        except Exception:  # a shortcut that fails is dropped, never the tile: storage has it
            logger.exception("pasting tiles of job %s failed; it will be assembled from storage", key)
            self.drop(key)

    @property
    def budget(self) -> int:
        return settings.COLLECTOR_CANVAS_MB << 20

    def held_bytes(self) -> int:
        """The memory the canvases held may come to (not what they hold yet: a canvas grows)."""
        return sum(canvas.reserved for canvas in self.held.values())

    def fits(self, job: Job) -> bool:
        """May the job have a canvas: canvases are on (a budget), and the result is a PNG (its
        bands wait on disk) or, in another format, the whole image fits the budget's memory?"""
        if job.output_mode not in COLOUR_TYPES or not self.budget:
            return False
        return self.held_bytes() + memory_of(job) <= self.budget

    def take(self, job: Job) -> Canvas | None:
        """The job's canvas, if complete, given up by the collector; None: assemble from storage."""
        self.refused.discard(str(job.pk))
        canvas = self.held.pop(str(job.pk), None)
        if canvas is not None and not canvas.complete:
            canvas.close()
            return None
        return canvas

    def drop(self, key: str) -> None:
        self.held.pop(key).close()
        self.refused.add(key)

    def forget_finished(self) -> None:
        """Let go of the canvases of jobs that ended without being assembled (failed, cancelled,
        deleted): the collector's sweep calls it."""
        known = set(self.held) | self.refused
        running = {
            str(pk) for pk in Job.objects.unfinished().filter(pk__in=known).values_list("pk", flat=True)
        }
        for key in set(self.held) - running:
            self.held.pop(key).close()
        self.refused &= running


def memory_of(job: Job) -> int:
    """What the job's canvas may come to hold in memory: nothing for a PNG (its bands wait on
    disk), else the whole image."""
    width, height = job.output_size
    return 0 if job.output_format == "png" else width * height * len(job.output_mode)


CANVASES = Canvases()
