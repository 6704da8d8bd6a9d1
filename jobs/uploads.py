"""Checking an uploaded image and its options before any work starts."""

from __future__ import annotations

import json
import logging
import math
import struct
import unicodedata
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any

from django.conf import settings
from PIL import Image, UnidentifiedImageError

from imagepipe.core.normalise import NormaliseError, normalise, normalised_shape, output_profile
from imagepipe.core.operations import ChainError, Step, parse_chain
from imagepipe.core.output import FORMATS

if TYPE_CHECKING:
    from .models import Job

logger = logging.getLogger(__name__)

ACCEPTED_FORMATS = {
    "PNG": ".png",
    "JPEG": ".jpg",
    "GIF": ".gif",
    "TIFF": ".tif",
    "WEBP": ".webp",
    "BMP": ".bmp",
}


JPEG_END = b"\xff\xd9"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class UploadError(ValueError):
    """A submission refused before anything was stored; ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def parse_operations(raw: Any) -> list[Step]:
    if isinstance(raw, (str, bytes)):
        try:
            raw = json.loads(raw, parse_constant=_refuse_constant)
        except ValueError as exc:
            raise UploadError(f"operations is not valid JSON: {exc}") from None
        except RecursionError:  # json's C scanner gives up on deep nesting with this, not a ValueError
            raise UploadError("operations is nested too deeply to be an operation chain") from None
    try:
        return parse_chain(raw)
    except ChainError as exc:
        raise UploadError(str(exc)) from None


def _refuse_constant(name: str) -> None:
    """Python's json reads NaN, Infinity and -Infinity; JSON has no such numbers."""
    raise ValueError(f"{name} is not a JSON number")


def whole_number(raw: Any, message: str) -> int:
    """``raw`` as an int, or UploadError(message); 1e400 from a JSON body is inf, whose int() overflows."""
    try:
        return int(raw)
    except (TypeError, ValueError, OverflowError):
        raise UploadError(message) from None


def parse_tile_size(raw: Any) -> int:
    if raw in (None, ""):
        return settings.TILE_SIZE_DEFAULT
    size = whole_number(raw, "tile_size must be a whole number")
    if not settings.TILE_SIZE_MIN <= size <= settings.TILE_SIZE_MAX:
        raise UploadError(f"tile_size must be between {settings.TILE_SIZE_MIN} and {settings.TILE_SIZE_MAX}")
    return size


def parse_priority(raw: Any) -> int:
    """ "low", "normal" (the default) or "high": how soon the job's tiles get into the window."""
    from .models import Job

    names = {choice.label.lower(): choice.value for choice in Job.Priority}
    if raw is None or raw == "":
        return Job.Priority.NORMAL
    if isinstance(raw, str) and raw.strip().lower() in names:
        return names[raw.strip().lower()]
    raise UploadError(f"priority must be one of {', '.join(names)}")


def parse_output(name: Any, quality: Any, mode: str) -> tuple[str, int | None]:
    """The result's format and quality; a format that can't hold the result is refused."""
    name = (name or "png").lower() if isinstance(name, str) or name is None else name
    if name not in FORMATS:
        raise UploadError(f"output_format must be one of {', '.join(FORMATS)}")
    if name == "jpeg" and mode in ("LA", "RGBA"):
        raise UploadError("JPEG cannot carry the alpha band of this image; choose png, webp or tiff")
    if quality in (None, ""):
        return name, None
    value = whole_number(quality, "quality must be a whole number from 1 to 100")
    if not 1 <= value <= 100:
        raise UploadError("quality must be a whole number from 1 to 100")
    if name not in ("jpeg", "webp"):
        raise UploadError("quality applies to jpeg and webp only")
    return name, value


@dataclass(frozen=True)
class Inspected:
    """What a job needs to know of its upload: the normalised mode and size, the profile."""

    mode: str
    size: tuple[int, int]
    icc_profile: bytes | None
    extension: str


def inspect_upload(upload) -> Inspected:
    """Check an upload from its header and structure, decoding its pixels only where they can't tell.

    A JPEG that ends in its end-of-image marker, and a PNG whose chunks are all present with
    their checksums right, are not decoded here (a 24 MP photo would take a second): the
    dispatcher decodes them, and a job whose pixels then fail to decode fails with the reason.
    Other formats, and the rare files these checks can't vouch for, are decoded now.
    """
    image, extension = _open_header(upload)
    profile = image.info.get("icc_profile")
    if _complete_without_decoding(image, upload):
        try:
            mode, size = normalised_shape(image)
        except NormaliseError as exc:
            raise UploadError(str(exc)) from None
        return Inspected(mode, size, profile, extension)
    image = _decode(image)
    return Inspected(image.mode, image.size, profile, extension)


def open_image(upload) -> tuple[Image.Image, str]:
    """Decode an uploaded file; returns the normalised image and its file extension."""
    image, extension = _open_header(upload)
    return _decode(image), extension


def _open_header(upload) -> tuple[Image.Image, str]:
    """Open an upload and check everything its header tells, before a pixel is decoded."""
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
    check_pixel_data(image.format, *image.size, upload.size)
    if getattr(image, "n_frames", 1) > 1:
        raise UploadError("animated or multi-frame images are not supported")
    return image, ACCEPTED_FORMATS[image.format]


def _decode(image: Image.Image) -> Image.Image:
    try:
        image.load()
        return normalise(image)
    except NormaliseError as exc:
        raise UploadError(str(exc)) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise UploadError(f"the image is truncated or corrupt: {exc}") from None


def _complete_without_decoding(image: Image.Image, upload) -> bool:
    """Whether the file's structure vouches it whole (a JPEG) or proves it (a PNG's checksums)."""
    if image.format == "JPEG":
        upload.seek(-2, 2)
        return upload.read(2) == JPEG_END
    if image.format == "PNG":
        chunks = png_chunks(upload)
        return b"eXIf" not in chunks or "exif" in image.info
    return False


def png_chunks(upload) -> set[bytes]:
    """The kinds of chunk in a PNG, each checked against its CRC; UploadError if one is cut or wrong."""
    upload.seek(len(PNG_SIGNATURE))
    kinds = set()
    while True:
        head = upload.read(8)
        if len(head) < 8:
            raise UploadError("the image is truncated or corrupt: the PNG ends before its last chunk")
        length, kind = struct.unpack(">I4s", head)
        data, crc = upload.read(length), upload.read(4)
        if len(data) < length or len(crc) < 4:
            raise UploadError("the image is truncated or corrupt: the PNG ends inside a chunk")
        if zlib.crc32(data, zlib.crc32(kind)) != struct.unpack(">I", crc)[0]:
            raise UploadError(f"the image is truncated or corrupt: a {kind!r} chunk fails its checksum")
        kinds.add(kind)
        if kind == b"IEND":
            return kinds


def check_dimensions(width: int, height: int) -> None:
    """Checked from the header, before a single pixel is decoded (decompression bombs)."""
    if max(width, height) > settings.MAX_IMAGE_SIDE:
        raise UploadError(
            f"the image is {width}×{height}; no side may exceed {settings.MAX_IMAGE_SIDE} pixels"
        )
    if width * height > settings.MAX_IMAGE_PIXELS:
        raise UploadError(f"the image has {width * height} pixels; the limit is {settings.MAX_IMAGE_PIXELS}")


def check_pixel_data(fmt: str, width: int, height: int, size: int) -> None:
    """Refuse, from the header and the file size, a file too small to hold the pixels it declares.

    A 633-byte JPEG claiming 14142 × 14142 has its end marker, so Pillow meets no early end of
    file (which it refuses, LOAD_TRUNCATED_IMAGES being off); its scan is only a few bytes, and
    libjpeg fills the missing blocks with grey, warning in a way Pillow does not report. It
    decodes "fine" into 600 MB, and only decoding all of it would show anything. The size of
    the file shows it at once: no encoder could have made that image so small.
    """
    least = least_bytes(fmt, width, height)
    if size < least:
        raise UploadError(
            f"the image's pixel data is missing: a {width}×{height} {fmt} holds at least "
            f"{least} bytes, this file has {size}"
        )


def least_bytes(fmt: str, width: int, height: int) -> int:
    """The fewest bytes any complete file of this format can hold for ``width`` × ``height``.

    Lower bounds from each codec, so no real image falls under them, however uniform.
    """
    if fmt == "JPEG":
        # Each 8 × 8 block of a full-resolution component has a Huffman-coded DC value, one bit
        # at least, in the baseline scan or a progressive file's first. (Arithmetic-coded JPEGs,
        # rare, can go lower: a near-uniform one this large would be refused.)
        return math.ceil(width / 8) * math.ceil(height / 8) // 8
    if fmt == "PNG":
        # deflate expands 1032:1 at most, and a row is a filter byte and at least a bit a pixel.
        return height * (1 + math.ceil(width / 8)) // 1032
    if fmt == "GIF":
        # An LZW code of w bits stands for at most 2**w pixels: at most 4096 pixels per 12 bits.
        return width * height * 12 // (4096 * 8)
    # BMP (run-length codes may skip pixels), TIFF (fax, LZW) and WebP (a one-symbol lossless
    # code costs no bits) have no useful bound: MAX_IMAGE_PIXELS is their only cap.
    return 0


def clean_filename(name: str | None) -> str:
    """A display name only: never used as a storage path."""
    name = PureWindowsPath(PurePosixPath(name or "").name).name
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    return name[:200] or "image"


def kept_profile(profile: bytes | None, mode: str) -> tuple[bytes, list[str]]:
    """The ICC profile the result will carry, and a note for the submitter if one was dropped.

    The profile is kept in the job row and written into the result; a colour profile is a few
    KB, so one past MAX_ICC_PROFILE_BYTES is dropped: the job runs, its result has no profile.
    """
    profile = output_profile(profile, mode)
    if profile is None or len(profile) <= settings.MAX_ICC_PROFILE_BYTES:
        return profile or b"", []
    note = (
        f"the image's {len(profile)}-byte ICC profile is over the "
        f"{settings.MAX_ICC_PROFILE_BYTES}-byte limit; the result is written without it"
    )
    logger.warning("dropped an ICC profile: %s", note)
    return b"", [note]


def check_tile_count(job: Job) -> None:
    """Refuse a job with more tiles than MAX_TILES_PER_JOB, naming the smallest tile size that fits."""
    count, limit = job.tile_count(), settings.MAX_TILES_PER_JOB
    if count <= limit:
        return
    # Fewer tiles for every larger size, so the first size that fits is the smallest.
    sizes = range(job.tile_size + 1, settings.TILE_SIZE_MAX + 1)
    fitting = next((size for size in sizes if job.tile_count(size) <= limit), None)
    advice = f"A tile_size of {fitting} or more fits" if fitting else "No tile_size fits: use a smaller image"
    raise UploadError(f"this job would make {count} tiles; the limit is {limit}. {advice}")


def check_message_size(tiles, bands: int) -> None:
    """Refuse a chain whose halo makes a padded tile larger than a Kafka message may be."""
    largest = max(spec.padded.width * spec.padded.height for _, spec in tiles) * bands
    if largest > settings.KAFKA_MAX_MESSAGE_BYTES:
        raise UploadError(
            f"with this chain's halo a tile would be {largest} bytes, over the "
            f"{settings.KAFKA_MAX_MESSAGE_BYTES}-byte message limit; choose a smaller tile_size"
        )
