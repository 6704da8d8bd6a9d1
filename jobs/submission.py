"""What a submission must be, apart from its image (``uploads``): its chain, tile size, priority and
output, its file's display name, and the limits the job's tiles must keep; any of them refused
with ``SubmissionError`` before anything is stored."""

from __future__ import annotations

import json
import unicodedata
from pathlib import PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any

from django.conf import settings

from imagepipe.core.bands import whole_bytes
from imagepipe.core.operations import ChainError, Step, parse_chain
from imagepipe.core.output import FORMATS, QUALITY, WHOLE

if TYPE_CHECKING:
    from .models import Job


class SubmissionError(ValueError):
    """A submission refused before anything was stored; ``status`` is the HTTP status, ``details``
    what the API's answer carries beside the message."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status
        self.details: dict[str, Any] = {}


def parse_operations(raw: Any) -> list[Step]:
    if isinstance(raw, (str, bytes)):
        try:
            raw = json.loads(raw, parse_constant=_refuse_constant)
        except ValueError as exc:
            raise SubmissionError(f"operations is not valid JSON: {exc}") from None
        except RecursionError:  # json's C scanner gives up on deep nesting with this, not a ValueError
            raise SubmissionError("operations is nested too deeply to be an operation chain") from None
    try:
        return parse_chain(raw)
    except ChainError as exc:
        raise SubmissionError(str(exc)) from None


def _refuse_constant(name: str) -> None:
    """Python's json reads NaN, Infinity and -Infinity; JSON has no such numbers."""
    raise ValueError(f"{name} is not a JSON number")


def whole_number(raw: Any, message: str) -> int:
    """``raw`` as an int, or SubmissionError(message) (1e400 from a JSON body is inf, whose int()
    overflows)."""
    try:
        return int(raw)
    except (TypeError, ValueError, OverflowError):
        raise SubmissionError(message) from None


def parse_tile_size(raw: Any) -> int:
    if raw in (None, ""):
        return settings.TILE_SIZE_DEFAULT
    size = whole_number(raw, "tile_size must be a whole number")
    if not settings.TILE_SIZE_MIN <= size <= settings.TILE_SIZE_MAX:
        raise SubmissionError(
            f"tile_size must be between {settings.TILE_SIZE_MIN} and {settings.TILE_SIZE_MAX}"
        )
    return size


def parse_priority(raw: Any, asked_by: Any = None) -> int:
    """ "low", "normal" (the default) or "high": how soon the job's tiles get into the window.

    High goes before fairness between users, so only staff, and the users staff allowed it, may
    ask for it (``asked_by``: the user asking; None for an operator at the command line). 403 for
    anyone else."""
    from .models import Job, UserLimits

    names = {choice.label.lower(): choice.value for choice in Job.Priority}
    if raw is None or raw == "":
        return Job.Priority.NORMAL
    if not (isinstance(raw, str) and raw.strip().lower() in names):
        raise SubmissionError(f"priority must be one of {', '.join(names)}")
    priority = names[raw.strip().lower()]
    if priority == Job.Priority.HIGH and asked_by is not None and not UserLimits.may_ask_high(asked_by):
        raise SubmissionError(
            "priority high is for staff and those they allow it: it goes before every other user's jobs",
            status=403,
        )
    return priority


def parse_output(name: Any, quality: Any, mode: str) -> tuple[str, int | None]:
    """The result's format and quality; a format that can't hold the result is refused."""
    name = (name or "png").lower() if isinstance(name, str) or name is None else name
    if name not in FORMATS:
        raise SubmissionError(f"output_format must be one of {', '.join(FORMATS)}")
    if name == "jpeg" and mode in ("LA", "RGBA"):
        raise SubmissionError(
            "JPEG cannot carry the alpha band of this image; choose png, webp, tiff, avif or heic"
        )
    if quality in (None, ""):
        return name, None
    value = whole_number(quality, "quality must be a whole number from 1 to 100")
    if not 1 <= value <= 100:
        raise SubmissionError("quality must be a whole number from 1 to 100")
    if name not in QUALITY:
        raise SubmissionError(f"quality applies to {', '.join(QUALITY)} only")
    return name, value


def clean_filename(name: str | None) -> str:
    """A display name only: never used as a storage path."""
    name = PureWindowsPath(PurePosixPath(name or "").name).name
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    return name[:200] or "image"


def check_geometry(job: Job) -> None:
    """Refuse a chain that cannot apply to this image (a crop outside it), or that would make an
    image larger than MAX_IMAGE_PIXELS at any stage."""
    try:
        sizes = [job.stage_size(stage) for stage in range(len(job.stages))] + [job.output_size]
    except ChainError as exc:
        raise SubmissionError(str(exc)) from None
    largest = max(sizes, key=lambda size: size[0] * size[1])
    if largest[0] * largest[1] > settings.MAX_IMAGE_PIXELS:
        raise SubmissionError(
            f"this chain makes a {largest[0]}×{largest[1]} image, over the "
            f"{settings.MAX_IMAGE_PIXELS:,}-pixel limit (MAX_IMAGE_PIXELS)"
        )


def check_tile_count(job: Job) -> None:
    """Refuse a job with more tiles than MAX_TILES_PER_JOB, naming the smallest tile size that fits."""
    count, limit = job.tile_count(), settings.MAX_TILES_PER_JOB
    if count <= limit:
        return
    # Fewer tiles for every larger size, so the first size that fits is the smallest.
    sizes = range(job.tile_size + 1, settings.TILE_SIZE_MAX + 1)
    fitting = next((size for size in sizes if job.tile_count(size) <= limit), None)
    advice = f"A tile_size of {fitting} or more fits" if fitting else "No tile_size fits: use a smaller image"
    raise SubmissionError(f"this job would make {count} tiles; the limit is {limit}. {advice}")


def check_result_encoding(job: Job) -> None:
    """Refuse a result the collector would have to hold whole: WebP, AVIF and HEIC are encoded from
    the whole image, which must fit ``RESULT_WHOLE_MB``; a PNG, TIFF or JPEG is written band by band."""
    needed = whole_bytes(job.output_mode, job.output_size)
    if job.output_format in WHOLE and needed > settings.RESULT_WHOLE_MB << 20:
        raise SubmissionError(
            f"a {job.output_format} result is encoded whole, and this one would take {needed >> 20} MB, "
            f"over the collector's {settings.RESULT_WHOLE_MB} MB (RESULT_WHOLE_MB); choose png or "
            "tiff, which are written band by band at any size (or jpeg)"
        )


def check_message_size(tiles, bands: int) -> None:
    """Refuse a chain whose halo makes a padded tile larger than a Kafka message may be."""
    largest = max(spec.read.width * spec.read.height for _, spec in tiles) * bands
    if largest > settings.KAFKA_MAX_MESSAGE_BYTES:
        raise SubmissionError(
            f"with this chain's halo a tile would be {largest} bytes, over the "
            f"{settings.KAFKA_MAX_MESSAGE_BYTES}-byte message limit; choose a smaller tile_size"
        )
