"""Checking an uploaded image before any work starts: its format, size and pixel data, from its
header and structure, decoding it only where they can't tell."""

from __future__ import annotations

import logging
import math
import struct
import zlib
from dataclasses import dataclass
from typing import cast

from django.conf import settings
from PIL import Image, UnidentifiedImageError

from imagepipe.core.normalise import NormaliseError, normalise, normalised_shape, output_profile

from .submission import SubmissionError

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
    their checksums right, are not decoded here (a photo's decode is most of a request's time): the
    dispatcher decodes them, and a job whose pixels then fail to decode fails with the reason.
    Other formats, and the rare files these checks can't vouch for, are decoded now.
    """
    image, extension = _open_header(upload)
    profile = image.info.get("icc_profile")
    if _complete_without_decoding(image, upload):
        try:
            mode, size = normalised_shape(image)
        except NormaliseError as exc:
            raise SubmissionError(str(exc)) from None
        return Inspected(mode, size, profile, extension)
    image = _decode(image)
    return Inspected(image.mode, image.size, profile, extension)


def _open_header(upload) -> tuple[Image.Image, str]:
    """Open an upload and check everything its header tells, before a pixel is decoded."""
    if upload is None:
        raise SubmissionError("an image file is required (field 'image')")
    if upload.size == 0:
        raise SubmissionError("the uploaded file is empty")
    if upload.size > settings.MAX_UPLOAD_BYTES:
        raise SubmissionError(f"the file is larger than {settings.MAX_UPLOAD_BYTES} bytes", status=413)
    upload.seek(0)
    try:
        image = Image.open(upload, formats=list(ACCEPTED_FORMATS))
    except UnidentifiedImageError:
        names = ", ".join(sorted(ACCEPTED_FORMATS))
        raise SubmissionError(
            f"the file is not an image in a supported format ({names})", status=415
        ) from None
    except Image.DecompressionBombError as exc:  # Pillow's own header check, for the very largest
        raise SubmissionError(f"the image declares too many pixels: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise SubmissionError(f"the image header is corrupt: {exc}") from None
    found = cast(str, image.format)  # one of ACCEPTED_FORMATS, the only formats it was opened with
    check_dimensions(*image.size)
    check_pixel_data(found, *image.size, upload.size)
    if getattr(image, "n_frames", 1) > 1:
        raise SubmissionError("animated or multi-frame images are not supported")
    return image, ACCEPTED_FORMATS[found]


def _decode(image: Image.Image) -> Image.Image:
    try:
        image.load()
        return normalise(image)
    except NormaliseError as exc:
        raise SubmissionError(str(exc)) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise SubmissionError(f"the image is truncated or corrupt: {exc}") from None


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
    """The kinds of chunk in a PNG, each checked against its CRC; SubmissionError if one is cut or wrong."""
    upload.seek(len(PNG_SIGNATURE))
    kinds = set()
    while True:
        head = upload.read(8)
        if len(head) < 8:
            raise SubmissionError("the image is truncated or corrupt: the PNG ends before its last chunk")
        length, kind = struct.unpack(">I4s", head)
        data, crc = upload.read(length), upload.read(4)
        if len(data) < length or len(crc) < 4:
            raise SubmissionError("the image is truncated or corrupt: the PNG ends inside a chunk")
        if zlib.crc32(data, zlib.crc32(kind)) != struct.unpack(">I", crc)[0]:
            raise SubmissionError(f"the image is truncated or corrupt: a {kind!r} chunk fails its checksum")
        kinds.add(kind)
        if kind == b"IEND":
            return kinds


def check_dimensions(width: int, height: int) -> None:
    """Checked from the header, before a single pixel is decoded (decompression bombs)."""
    if max(width, height) > settings.MAX_IMAGE_SIDE:
        raise SubmissionError(
            f"the image is {width}×{height}; no side may exceed {settings.MAX_IMAGE_SIDE} pixels"
        )
    if width * height > settings.MAX_IMAGE_PIXELS:
        raise SubmissionError(
            f"the image has {width * height} pixels; the limit is {settings.MAX_IMAGE_PIXELS}"
        )


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
        raise SubmissionError(
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
