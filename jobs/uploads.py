"""Checking an uploaded image before any work starts: its format, size and structure, from its
header and its chunks or segments, never decoding a pixel (the web process holds no image)."""

from __future__ import annotations

import io
import logging
import math
import re
import struct
import zlib
from dataclasses import dataclass
from typing import cast

from django.conf import settings
from PIL import Image, ImageFile, UnidentifiedImageError

from imagepipe.core.bands import streamable, whole_bytes
from imagepipe.core.normalise import SIXTEEN_BIT, NormaliseError, normalised_shape, output_profile

from .submission import SubmissionError

logger = logging.getLogger(__name__)

ACCEPTED_FORMATS = {
    "PNG": ".png",
    "JPEG": ".jpg",
    "GIF": ".gif",
    "TIFF": ".tif",
    "WEBP": ".webp",
    "BMP": ".bmp",
    "AVIF": ".avif",
    "HEIF": ".heic",  # with pillow-heif's opener (jobs.apps)
}


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_PIXEL_DATA = (b"IDAT", b"fdAT")
JPEG_EOI = 0xD9
JPEG_STANDALONE = (0x01, 0xD8)  # markers with no length after them (RSTn never match MARKER)
# A marker: 0xFF then a code. In a scan's entropy-coded data 0xFF is followed by 0x00 (stuffing) or
# a restart marker, and 0xFF runs are fill: none of them ends the data.
JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
READ_BLOCK = 1 << 20


@dataclass(frozen=True)
class Inspected:
    """What a job needs to know of its upload: the normalised mode and size, the profile."""

    mode: str
    size: tuple[int, int]
    icc_profile: bytes | None
    extension: str
    sixteen_bit: bool = False  # 16 bits a sample, which the job reduces to 8 (README, "Input and output")


def inspect_upload(upload) -> Inspected:
    """Check an upload from its header and structure; no pixel is decoded here.

    A PNG's chunks must all be there with their checksums right, a JPEG's segments must run on to
    its end-of-image marker. What only decoding shows (a stream garbled behind right checksums, a
    TIFF or WebP cut short, a 16-bit image's values out of range) is found by the dispatcher, which
    decodes the original anyway: the job fails there, with the reason, before any tile is sent.
    """
    image, extension = _open_header(upload)
    if image.format == "PNG":
        image = png_metadata(upload)
    elif image.format == "JPEG" and not jpeg_reaches_its_end(upload):
        raise SubmissionError(
            "the image is truncated or corrupt: the JPEG ends before its end-of-image marker"
        )
    try:
        mode, size = normalised_shape(image)
    except NormaliseError as exc:
        raise SubmissionError(str(exc)) from None
    check_decodable(image, mode, size)
    return Inspected(mode, size, image.info.get("icc_profile"), extension, sixteen_bits(image))


def sixteen_bits(header: Image.Image) -> bool:
    """Whether the image holds 16 bits a sample: a 16-bit grey mode, or (a 16-bit colour PNG,
    which Pillow opens as 8-bit RGB) a raw mode of 16 bits in its first tile."""
    if header.mode in SIXTEEN_BIT:
        return True
    tiles = getattr(header, "tile", None) or []
    args = tiles[0].args if tiles else None
    raw = args if isinstance(args, str) else args[0] if isinstance(args, tuple) and args else ""
    return isinstance(raw, str) and ";16" in raw


def check_decodable(header: Image.Image, mode: str, size: tuple[int, int]) -> None:
    """Refuse an image the dispatcher could not hold: one of a kind it decodes whole (not read in
    bands, ``imagepipe.core.bands``) that is larger than its memory budget."""
    needed = whole_bytes(mode, size)
    if not streamable(header) and needed > settings.DISPATCH_MEMORY_MB << 20:
        raise SubmissionError(
            f"a {header.format} {header.mode} image is decoded whole, and this one would take "
            f"{needed >> 20} MB, over the {settings.DISPATCH_MEMORY_MB} MB the dispatcher may hold "
            "(DISPATCH_MEMORY_MB); save it as PNG, JPEG or TIFF, which are read in bands"
        )


def _open_header(upload) -> tuple[ImageFile.ImageFile, str]:
    """Open an upload and check everything its header tells, before a pixel is decoded."""
    if upload is None:
        raise SubmissionError(
            "an image is required: a file in the field 'image', a resumable upload's id in 'upload' "
            "or a storage key in 'storage_key'"
        )
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
    check_raster(image, upload.size)
    check_tiff_data(image, upload.size)
    if more_than_one_frame(image):
        raise SubmissionError("animated or multi-frame images are not supported")
    return image, ACCEPTED_FORMATS[found]


def png_metadata(upload) -> ImageFile.ImageFile:
    """The PNG's header as Pillow reads it, with every chunk but the pixel data, wherever it sits.

    Each chunk is checked against its CRC on the way (a cut or damaged file is refused). Pillow
    reads the chunks after the pixel data (an eXIf, XMP or text written last) only as it decodes
    them, so the chunks are opened again with the pixel data left out: what Pillow then knows
    (EXIF orientation, transparency, the profile) is what the dispatcher's decode will know.
    """
    upload.seek(len(PNG_SIGNATURE))
    kept = []
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
        if kind == b"IEND":
            break
        if kind not in PNG_PIXEL_DATA:
            kept.append(head + data + crc)
    empty_idat = struct.pack(">I4sI", 0, b"IDAT", zlib.crc32(b"IDAT"))
    chunks = b"".join([PNG_SIGNATURE, *kept, empty_idat, head, crc])
    return Image.open(io.BytesIO(chunks), formats=["PNG"])


def jpeg_reaches_its_end(upload) -> bool:
    """Whether the JPEG's segments and scans run on to its end-of-image marker (read, not decoded).

    Segments are skipped by their lengths and scans searched for the next marker, so an EXIF
    thumbnail's own end marker is passed over, and data after the end (some cameras' trailers)
    is allowed. Bytes between segments that are no marker are skipped, as libjpeg does.
    """
    upload.seek(2)  # past the start-of-image marker Pillow found
    while _next_jpeg_marker(upload):
        marker = upload.read(2)[1]
        if marker == JPEG_EOI:
            return True
        if marker in JPEG_STANDALONE:
            continue
        length = int.from_bytes(upload.read(2), "big")
        if length < 2:  # cut short, or no length at all
            return False
        upload.seek(length - 2, io.SEEK_CUR)  # a scan's data follows its header
    return False


def _next_jpeg_marker(upload) -> bool:
    """Move to the next marker from here; False if the file ends first."""
    while True:
        start = upload.tell()
        block = upload.read(READ_BLOCK)
        if len(block) < 2:
            return False
        found = JPEG_MARKER.search(block)
        if found:
            upload.seek(start + found.start())
            return True
        upload.seek(start + len(block) - 1)  # a last 0xFF may begin a marker


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
    # BMP (run-length codes may skip pixels; an uncompressed one is held to its rows by
    # check_raster) and WebP (a one-symbol lossless code costs no bits) have no useful bound, and a
    # TIFF's depends on its compression (check_tiff_data).
    return 0


def check_raster(image: ImageFile.ImageFile, size: int) -> None:
    """Refuse an uncompressed BMP too short for the rows its header declares.

    It stores every row in full, so its header tells how long the file must be; Pillow would
    allocate the whole image before finding the rows missing.
    """
    if image.format != "BMP" or image.tile[0].codec_name != "raw":
        return
    tile = image.tile[0]
    stride = cast(tuple, tile.args)[1]
    least = tile.offset + stride * image.height
    if size < least:
        raise SubmissionError(
            f"the image's pixel data is missing: an uncompressed {image.width}×{image.height} BMP "
            f"holds {least} bytes, this file has {size}"
        )


# The most a byte of each TIFF compression can stand for (1: none, 32773: PackBits, 5: LZW, whose
# codes of 9 bits or more stand for 4,096 bytes at most, 8 and 32946: deflate). JPEG (7) and fax
# (2, 3, 4: a row the same as the one before takes a bit) have their own bounds; the rest, none.
TIFF_EXPANSION = {1: 1, 32773: 64, 5: 3641, 8: 1032, 32946: 1032}
TIFF_STRIPS = ((273, 279), (324, 325))  # StripOffsets and StripByteCounts; TileOffsets and TileByteCounts


def check_tiff_data(image: ImageFile.ImageFile, size: int) -> None:
    """Refuse a TIFF whose strips (or tiles) lie past the end of the file, or hold fewer bytes than
    its compression needs for the pixels it declares, from its first directory alone."""
    if image.format != "TIFF":
        return
    tags = image.tag_v2  # type: ignore[attr-defined]  # a TiffImageFile's
    offsets, counts = next(
        ((tags.get(where), tags.get(length)) for where, length in TIFF_STRIPS if tags.get(where)), ((), ())
    )
    if not counts:  # libtiff works out an uncompressed single strip's length itself
        return
    if len(offsets) != len(counts) or any(
        start + length > size for start, length in zip(offsets, counts, strict=True)
    ):
        raise SubmissionError(
            "the image is truncated or corrupt: a TIFF strip or tile ends past the end of the file"
        )
    width, height = image.size
    compression = tags.get(259, 1)
    if compression == 7:
        least = least_bytes("JPEG", width, height)
    elif compression in (2, 3, 4):
        least = height // 8
    elif compression in TIFF_EXPANSION:
        least = math.ceil(width * tiff_bits_per_pixel(tags) / 8) * height // TIFF_EXPANSION[compression]
    else:
        return
    if sum(counts) < least:
        raise SubmissionError(
            f"the image's pixel data is missing: a {width}×{height} TIFF holds at least {least} bytes "
            f"of pixels, its strips hold {sum(counts)}"
        )


def tiff_bits_per_pixel(tags) -> int:
    """BitsPerSample (258) is given per sample, or once for all SamplesPerPixel (277)."""
    bits = tags.get(258, (1,))
    bits = bits if isinstance(bits, tuple) else (bits,)
    return sum(bits) if len(bits) > 1 else bits[0] * tags.get(277, 1)


def more_than_one_frame(image: ImageFile.ImageFile) -> bool:
    """A TIFF's first directory says whether another follows (counting them, as ``n_frames`` does,
    would read every one: seconds for 10,000)."""
    if image.format == "TIFF":
        return bool(image.tag_v2.next)  # type: ignore[attr-defined]
    return getattr(image, "n_frames", 1) > 1


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
