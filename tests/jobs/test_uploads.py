"""jobs.uploads: uploads are normalised once, and every bad submission is a clear 4xx, through the API
and the form, before anything is stored or published."""

import io
import struct
import time
import zlib
from typing import cast

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient

from imagepipe.core.normalise import normalise
from jobs.models import Job
from jobs.uploads import SubmissionError, check_pixel_data, least_bytes
from tests.images import DATA, SRGB, decoding_watched, encoded, noise, photo, png_chunk, png_file

from .factories import post_job, upload

pytestmark = pytest.mark.django_db


def test_an_exif_rotated_jpeg_is_processed_upright(alice_api):
    tags = Image.Exif()
    tags[0x0112] = 8  # rotate 90° counter-clockwise to display
    body = post_job(alice_api, upload(noise(60, 20), "turned.jpg", "JPEG", exif=tags.tobytes())).json()
    assert (body["width"], body["height"]) == (20, 60)


def test_a_16_bit_png_becomes_grayscale(alice_api):
    sixteen = Image.fromarray(np.full((4, 5), 40000, dtype=np.uint16))
    response = post_job(alice_api, SimpleUploadedFile("deep.png", encoded(sixteen)))
    assert response.status_code == 201
    assert Job.objects.get().mode == "L"


def test_an_icc_profile_is_kept_for_colour_output_and_dropped_for_grayscale(alice_api):
    tagged = upload(noise(20, 20), "tagged.jpg", "JPEG", icc_profile=SRGB)
    post_job(alice_api, tagged)
    tagged.seek(0)
    post_job(alice_api, tagged, operations='[{"op": "grayscale"}]')
    colour, gray = Job.objects.order_by("created_at")
    assert bytes(colour.icc_profile) == SRGB and bytes(gray.icc_profile) == b""


@pytest.mark.parametrize(
    "make,status,message",
    [
        (
            lambda: SimpleUploadedFile("float.tif", encoded(noise(4, 4, "L").convert("F"), "TIFF")),
            400,
            "cannot be processed",
        ),
        (
            lambda: SimpleUploadedFile(
                "anim.gif", encoded(noise(4, 4), "GIF", save_all=True, append_images=[noise(4, 4, seed=1)])
            ),
            400,
            "multi-frame",
        ),
        (
            lambda: SimpleUploadedFile("page.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
            415,
            "not an image",
        ),
    ],
)
def test_images_that_cannot_be_processed_are_refused(alice_api, make, status, message):
    response = post_job(alice_api, make())
    assert response.status_code == status
    assert message in response.json()["error"]
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "image,extra,message",
    [
        (noise(8, 8, "RGBA"), {"output_format": "jpeg"}, "JPEG cannot carry the alpha band"),
        (noise(8, 8), {"output_format": "gif"}, "output_format must be one of png, jpeg, webp, tiff"),
        (
            noise(8, 8),
            {"output_format": "jpeg", "quality": "101"},
            "quality must be a whole number from 1 to 100",
        ),
        (
            noise(8, 8),
            {"output_format": "png", "quality": "80"},
            "quality applies to jpeg, webp, avif, heic only",
        ),
    ],
)
def test_impossible_output_requests_are_refused(alice_api, image, extra, message):
    response = post_job(alice_api, upload(image), **extra)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not Job.objects.exists()


def test_an_rgb_image_goes_to_jpeg_with_its_quality(alice_api):
    response = post_job(alice_api, upload(noise(8, 8)), output_format="jpeg", quality="75")
    assert response.status_code == 201
    assert (response.json()["output_format"], response.json()["output_quality"]) == ("jpeg", 75)


def test_a_chain_whose_halo_would_overflow_a_kafka_message_is_refused(alice_api, settings):
    settings.KAFKA_MAX_MESSAGE_BYTES = 100 * 100 * 3
    blur = '[{"op": "gaussian_blur", "radius": 50}]'  # a 153-pixel halo around every tile
    response = post_job(alice_api, upload(noise(400, 400)), operations=blur, tile_size="64")
    assert response.status_code == 400
    assert "message limit; choose a smaller tile_size" in response.json()["error"]
    assert (
        post_job(
            alice_api, upload(noise(40, 40)), operations='[{"op": "invert"}]', tile_size="64"
        ).status_code
        == 201
    )


def test_an_icc_profile_over_the_limit_is_dropped_and_the_submitter_told(alice_api, caplog):
    huge = SRGB + bytes(600 * 1024)  # a colour profile is a few KB; past 512 KiB it goes
    response = post_job(alice_api, upload(noise(20, 20), "tagged.jpg", "JPEG", icc_profile=huge))
    assert response.status_code == 201
    note = (
        f"the image's {len(huge)}-byte ICC profile is over the 524288-byte limit; "
        "the result is written without it"
    )
    assert response.json()["warnings"] == [note]
    assert note in caplog.text
    assert bytes(Job.objects.get().icc_profile) == b""


def test_a_profile_within_the_limit_brings_no_warning(alice_api):
    response = post_job(alice_api, upload(noise(20, 20), "tagged.jpg", "JPEG", icc_profile=SRGB))
    assert "warnings" not in response.json()


def black(mode, size=(2048, 2048)):
    return Image.new(mode, size)


def data_file(name):
    return lambda: (DATA / name).read_bytes()


# The most compressible files each format can make: the least-bytes bound must let them all through.
COMPLETE = {
    "1-bit PNG": lambda: encoded(black("1"), "PNG", optimize=True),
    "palette PNG": lambda: encoded(black("P"), "PNG", optimize=True),
    "RGBA PNG": lambda: encoded(black("RGBA"), "PNG", compress_level=9),
    "progressive JPEG": lambda: encoded(black("L"), "JPEG", progressive=True, optimize=True, quality=1),
    "baseline JPEG": lambda: encoded(black("RGB"), "JPEG", optimize=True, quality=1),
    "JPEG of a thin strip": lambda: encoded(black("L", (60000, 8)), "JPEG", optimize=True),
    "GIF": lambda: encoded(black("P"), "GIF"),
    "camera.png": data_file("camera.png"),
    "coffee.png": data_file("coffee.png"),
    "rocket.jpg": data_file("rocket.jpg"),
}


@pytest.mark.parametrize("case", sorted(COMPLETE))
def test_a_complete_image_has_at_least_its_formats_least_bytes(case):
    data = COMPLETE[case]()
    with Image.open(io.BytesIO(data)) as image:
        assert len(data) >= least_bytes(cast(str, image.format), *image.size)


def test_a_large_black_progressive_jpeg_is_accepted(alice_api):
    night = SimpleUploadedFile("night.jpg", COMPLETE["progressive JPEG"]())
    assert post_job(alice_api, night).status_code == 201


def turned(orientation: int) -> bytes:
    """EXIF that says how to turn the image for display (6: a quarter clockwise, 8: anticlockwise)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def after_the_pixels(png: bytes, chunk: bytes) -> bytes:
    end = png.rindex(b"IEND") - 4
    return png[:end] + chunk + png[end:]


LATE_EXIF = png_chunk(b"eXIf", turned(6)[6:])  # the chunk holds the EXIF without its "Exif" prefix
LATE_XMP = png_chunk(
    b"iTXt",
    b"XML:com.adobe.xmp\0\0\0\0\0" + b'<x:xmpmeta><rdf:Description tiff:Orientation="6"/></x:xmpmeta>',
)
SEGMENT_WITH_AN_END = encoded(noise(8, 8), "JPEG")  # a whole JPEG, end marker and all, as a comment


def test_a_png_turned_by_exif_after_its_pixels_is_measured_upright(alice_api):
    late = after_the_pixels(encoded(noise(40, 20)), LATE_EXIF)
    assert "exif" not in Image.open(io.BytesIO(late)).info  # Pillow sees it only on decoding
    with decoding_watched() as decodes:
        assert post_job(alice_api, SimpleUploadedFile("turned.png", late)).status_code == 201
    assert decodes == []
    job = Job.objects.get()
    assert (job.width, job.height) == (20, 40)


# Every format accepted, with what it can hide from a first look at its header.
EVERY_FORMAT = {
    "PNG with alpha": lambda: encoded(noise(40, 20, "RGBA")),
    "PNG turned by an eXIf after its pixels": lambda: after_the_pixels(encoded(noise(40, 20)), LATE_EXIF),
    "PNG turned by XMP after its pixels": lambda: after_the_pixels(encoded(noise(40, 20)), LATE_XMP),
    "palette PNG with a transparent colour": lambda: encoded(noise(30, 10).convert("P"), transparency=3),
    "16-bit PNG": lambda: encoded(Image.new("I;16", (30, 10), 4000)),
    "JPEG turned by EXIF": lambda: encoded(noise(40, 20), "JPEG", exif=turned(6)),
    "progressive grayscale JPEG": lambda: encoded(noise(64, 48, "L"), "JPEG", progressive=True),
    "CMYK JPEG": lambda: encoded(noise(40, 20).convert("CMYK"), "JPEG"),
    "JPEG with data after its end": lambda: encoded(noise(40, 20), "JPEG") + b"a camera's trailer",
    "JPEG with an end marker inside a segment": lambda: encoded(
        noise(40, 20), "JPEG", comment=SEGMENT_WITH_AN_END
    ),
    "GIF": lambda: encoded(noise(30, 10).convert("P"), "GIF"),
    "TIFF turned by EXIF": lambda: encoded(noise(40, 20), "TIFF", exif=turned(8)),
    "LZW TIFF with alpha": lambda: encoded(noise(30, 10, "RGBA"), "TIFF", compression="tiff_lzw"),
    "16-bit TIFF": lambda: encoded(Image.new("I;16", (30, 10), 4000), "TIFF"),
    "WebP turned by EXIF": lambda: encoded(noise(40, 20), "WEBP", lossless=True, exif=turned(6)),
    "lossy WebP with alpha": lambda: encoded(noise(30, 10, "RGBA"), "WEBP"),
    "BMP": lambda: encoded(noise(30, 10), "BMP"),
    "palette BMP": lambda: encoded(noise(30, 10).convert("P"), "BMP"),
    "AVIF": lambda: encoded(noise(40, 20), "AVIF"),
    "grey AVIF with alpha": lambda: encoded(noise(30, 10, "LA"), "AVIF"),
    "HEIC": lambda: encoded(noise(40, 20), "HEIF"),
    "HEIC with alpha": lambda: encoded(noise(30, 10, "RGBA"), "HEIF"),
}


@pytest.mark.parametrize("case", sorted(EVERY_FORMAT))
def test_an_accepted_image_is_measured_without_decoding_a_pixel(case, alice_api):
    data = EVERY_FORMAT[case]()
    with decoding_watched() as decodes:
        response = post_job(alice_api, SimpleUploadedFile("upload", data))
    assert response.status_code == 201, response.content
    assert decodes == []
    with decoding_watched() as decodes:
        decoded = normalise(Image.open(io.BytesIO(data)))  # what the dispatcher will make of it
    assert decodes  # the watch sees this very file decoded
    job = Job.objects.get()
    assert (job.mode, job.width, job.height) == (decoded.mode, *decoded.size)


def test_a_jpeg_cut_short_is_refused_though_a_segment_holds_an_end_marker(alice_api):
    whole = encoded(noise(40, 20), "JPEG", comment=SEGMENT_WITH_AN_END)
    cut = whole[:-100]  # in the scan, after the comment and its end marker
    assert whole.index(SEGMENT_WITH_AN_END) + len(SEGMENT_WITH_AN_END) < len(cut)
    response = post_job(alice_api, SimpleUploadedFile("cut.jpg", cut))
    assert response.status_code == 400
    assert "the JPEG ends before its end-of-image marker" in response.json()["error"]


def declaring(data: bytes, fmt: str, width: int, height: int) -> bytes:
    """A small file of ``fmt`` whose header is made to declare ``width`` × ``height``: a bomb."""
    out = bytearray(data)
    if fmt == "BMP":  # the info header's width and height
        out[18:26] = struct.pack("<ii", width, height)
    elif fmt == "TIFF":  # the first directory's ImageWidth and ImageLength entries (Pillow writes LONGs)
        (first,) = struct.unpack_from("<I", out, 4)
        (count,) = struct.unpack_from("<H", out, first)
        for entry in range(first + 2, first + 2 + 12 * count, 12):
            tag = struct.unpack_from("<H", out, entry)[0]
            if tag in (256, 257):
                struct.pack_into("<I", out, entry + 8, width if tag == 256 else height)
    elif fmt == "WEBP":  # the extended header's canvas, 24 bits a side, each less one
        assert out[12:16] == b"VP8X"
        out[24:30] = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    elif fmt == "HEIF":  # AVIF and HEIC: the image's spatial extent property (ispe)
        at = out.index(b"ispe") + 8  # past its version and flags
        out[at : at + 8] = struct.pack(">II", width, height)
    elif fmt == "GIF":  # the logical screen and the one image's descriptor
        out[6:10] = struct.pack("<HH", width, height)
        descriptor = out.index(b"\x2c", 13 + 3 * 2 ** ((out[10] & 7) + 1))
        out[descriptor + 5 : descriptor + 9] = struct.pack("<HH", width, height)
    return bytes(out)


# Each format's bomb: few bytes behind a header that declares a huge image. Those whose codecs
# bound the pixels a byte can hold are refused for the bytes they lack; the others (no bound) for
# the pixels they declare.
BOMBS = {
    "JPEG": (lambda: missing_data_jpeg(), "pixel data is missing"),
    "PNG": (lambda: bomb_png(14142, 14142), "pixel data is missing"),
    "GIF": (
        lambda: declaring(encoded(Image.new("P", (4, 4)), "GIF"), "GIF", 14142, 14142),
        "pixel data is missing",
    ),
    "uncompressed BMP": (
        lambda: declaring(encoded(noise(4, 4), "BMP"), "BMP", 14142, 14142),
        "pixel data is missing: an uncompressed 14142×14142 BMP holds 600",
    ),
    "TIFF": (
        lambda: declaring(encoded(noise(4, 4), "TIFF"), "TIFF", 20000, 20000),
        "a 20000×20000 TIFF holds at least 1200000000 bytes of pixels, its strips hold 48",
    ),
    "compressed TIFF": (
        lambda: declaring(encoded(noise(4, 4), "TIFF", compression="tiff_lzw"), "TIFF", 50000, 50000),
        "pixel data is missing: a 50000×50000 TIFF holds at least 2059873 bytes",
    ),
    "WebP": (
        lambda: declaring(encoded(noise(4, 4), "WEBP", lossless=True, exif=turned(1)), "WEBP", 30000, 30000),
        "the image header is corrupt",  # libwebp's: the canvas is not the bitstream's size
    ),
    # libavif refuses a file whose extent is not its bitstream's (415: not an image it can read).
    # A HEIC's size is read from its bitstream, not this property: the same forgery is a 4 × 4.
    "AVIF": (
        lambda: declaring(encoded(noise(4, 4), "AVIF"), "HEIF", 30000, 30000),
        "the file is not an image in a supported format",
    ),
}


@pytest.mark.parametrize("case", sorted(BOMBS))
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's, ahead of our refusal
def test_a_bomb_is_refused_from_its_header_in_every_format(case, alice_api, media_root):
    make, message = BOMBS[case]
    data = make()
    assert len(data) < 2000
    with decoding_watched() as decodes:
        response = post_job(alice_api, SimpleUploadedFile("bomb", data))
    assert response.status_code == (415 if case == "AVIF" else 400), response.content
    assert message in response.json()["error"]
    assert decodes == []
    assert not Job.objects.exists() and not any(path.is_file() for path in media_root.rglob("*"))


def grey_tiff(width: int = 64, height: int = 64, directories: int = 1) -> bytes:
    """An uncompressed grey TIFF with its directories first, each naming the one strip after them."""
    size = 2 + 9 * 12 + 4
    strip = 8 + directories * size
    tiff = bytearray(b"II*\0" + struct.pack("<I", 8))
    for index in range(directories):
        entries = [(256, width), (257, height), (258, 8), (259, 1), (262, 1), (273, strip)]
        entries += [(277, 1), (278, height), (279, width * height)]
        following = 8 + (index + 1) * size if index + 1 < directories else 0
        tiff += struct.pack("<H", len(entries))
        tiff += b"".join(struct.pack("<HHII", tag, 4, 1, value) for tag, value in entries)
        tiff += struct.pack("<I", following)
    return bytes(tiff + noise(width, height, "L").tobytes())


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: grey_tiff(directories=10_000), "animated or multi-frame images are not supported"),
        (lambda: grey_tiff()[:-100], "a TIFF strip or tile ends past the end of the file"),
    ],
    ids=["10,000 directories", "a truncated strip"],
)
def test_a_tiff_is_refused_from_its_first_directory(make, message, alice_api, media_root):
    data = make()
    assert Image.open(io.BytesIO(grey_tiff())).tobytes() == noise(64, 64, "L").tobytes()  # a TIFF, whole
    started = time.monotonic()
    with decoding_watched() as decodes:
        response = post_job(alice_api, SimpleUploadedFile("scan.tif", data))
    assert response.status_code == 400 and message in response.json()["error"]
    assert time.monotonic() - started < 0.5  # Pillow counting the 10,000 directories takes seconds
    assert decodes == [] and not Job.objects.exists()


def test_a_png_with_a_wrong_checksum_anywhere_is_refused(alice_api):
    good = encoded(noise(40, 30), optimize=False)
    end = good.rindex(b"IEND") - 4
    bad = good[: end - 5] + bytes([good[end - 5] ^ 1]) + good[end - 4 :]  # the last IDAT's checksum
    response = post_job(alice_api, SimpleUploadedFile("bad.png", bad))
    assert response.status_code == 400
    assert "chunk fails its checksum" in response.json()["error"]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF"])
def test_a_file_too_small_for_its_declared_size_is_refused_before_decoding(fmt):
    with pytest.raises(SubmissionError, match=f"pixel data is missing: a 14142×14142 {fmt} holds at least"):
        check_pixel_data(fmt, 14142, 14142, 633)


# Bad submissions: each case below is refused with its status and message by the API and the form.
CHAIN = '[{"op": "invert"}]'


def bomb_png(width=100_000, height=100_000) -> bytes:
    """A few hundred bytes of PNG whose header declares ``width`` × ``height`` pixels."""
    return png_file(width, height, zlib.compress(b"\0" * 64))


def missing_data_jpeg(width=14142, height=14142) -> bytes:
    """A real 8 × 8 JPEG whose frame header claims ``width`` × ``height``: libjpeg pads the rest."""
    data = bytearray(encoded(Image.new("RGB", (8, 8), (200, 30, 30)), "JPEG"))
    frame = data.index(b"\xff\xc0")  # SOF0: length, precision, then height and width
    data[frame + 5 : frame + 9] = struct.pack("!HH", height, width)
    return bytes(data)


def file(name, data):
    return (name, data)  # a fresh upload is made per request: an upload can be read only once


PNG = encoded(noise(40, 30))
BAD = {
    "not an image": ({"image": file("notes.txt", b"just some text")}, 415, "not an image"),
    "truncated image": (
        {"image": file("cut.png", encoded(photo("coffee.png"))[:5000])},
        400,
        "truncated or corrupt",
    ),
    "truncated jpeg": (
        {"image": file("cut.jpg", encoded(photo("coffee.png").convert("RGB"), "JPEG")[:-2000])},
        400,
        "truncated or corrupt",
    ),
    "corrupt image": ({"image": file("bad.png", PNG[:60] + b"\0" * 200 + PNG[260:])}, 400, "corrupt"),
    "empty file": ({"image": file("empty.png", b"")}, 400, "the uploaded file is empty"),
    "extension lies": ({"image": file("photo.png", b"GIF89a? not really")}, 415, "not an image"),
    "svg": (
        {"image": file("x.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>')},
        415,
        "not an image",
    ),
    "html": ({"image": file("x.png", b"<!doctype html><html><body>hi</body></html>")}, 415, "not an image"),
    "over the byte limit": ({"image": file("big.png", PNG)}, 413, "larger than 500 bytes"),
    "over the pixel limit": (
        {"image": file("wide.png", encoded(noise(150, 100)))},
        400,
        "the limit is 10000",
    ),
    "decompression bomb": ({"image": file("bomb.png", bomb_png())}, 400, "pixels"),
    "over the side limit": (
        {"image": file("tall.png", encoded(noise(5, 300)))},
        400,
        "no side may exceed 200",
    ),
    "animated image": (
        {
            "image": file(
                "anim.gif", encoded(noise(4, 4), "GIF", save_all=True, append_images=[noise(4, 4, seed=2)])
            )
        },
        400,
        "multi-frame",
    ),
    "unknown operation": ({"operations": '[{"op": "melt"}]'}, 400, "unknown operation 'melt'"),
    "parameter out of range": ({"operations": '[{"op": "median", "size": 4}]'}, 400, "must be odd"),
    "parameter of the wrong type": (
        {"operations": '[{"op": "gaussian_blur", "radius": "big"}]'},
        400,
        "must be a number",
    ),
    "chain too long": ({"operations": "[" + ",".join(['{"op": "invert"}'] * 11) + "]"}, 400, "at most 10"),
    "tile size out of range": ({"tile_size": "9"}, 400, "tile_size must be between 16 and 2048"),
    "malformed json": ({"operations": "[{'op': 'invert'}]"}, 400, "not valid JSON"),
    "NaN parameter": (
        {"operations": '[{"op": "posterize", "bits": NaN}]'},
        400,
        "operations is not valid JSON: NaN is not a JSON number",
    ),
    "Infinity parameter": (
        {"operations": '[{"op": "posterize", "bits": -Infinity}]'},
        400,
        "operations is not valid JSON: -Infinity is not a JSON number",
    ),
    "1e400 whole-number parameter": (
        {"operations": '[{"op": "posterize", "bits": 1e400}]'},
        400,
        "posterize: parameter 'bits' must be a finite number",
    ),
    "1e400 decimal parameter": (
        {"operations": '[{"op": "gaussian_blur", "radius": -1e400}]'},
        400,
        "gaussian_blur: parameter 'radius' must be a finite number",
    ),
    "huge whole-number parameter": (
        {"operations": '[{"op": "posterize", "bits": 1' + "0" * 400 + "}]"},
        400,
        "posterize: parameter 'bits' must be between 1 and 8",
    ),
    "deeply nested operations": (
        {"operations": "[" * 5000 + "]" * 5000},
        400,
        "operations is nested too deeply to be an operation chain",
    ),
    "lone surrogate": ({"operations": '[{"op": "\\ud800"}]'}, 400, "unknown operation '\\ud800'"),
    "lone surrogate parameter": (
        {"operations": '[{"op": "invert", "\\udfff": 1}]'},
        400,
        "invert: unexpected parameter(s) '\\udfff'",
    ),
    "pixel data missing": ({"image": file("hollow.jpg", missing_data_jpeg())}, 400, "pixel data is missing"),
    "too many tiles": (
        {"image": file("black.png", encoded(Image.new("L", (4096, 4096)))), "tile_size": "16"},
        400,
        "this job would make 65536 tiles; the limit is 16384. A tile_size of 32 or more fits",
    ),
    "too many tiles over its stages": (
        {"operations": '[{"op": "invert"}, {"op": "equalize"}]', "tile_size": "16"},
        400,
        "this job would make 12 tiles; the limit is 10. A tile_size of 20 or more fits",
    ),
}


def submission(overrides):
    fields = {"image": file("ok.png", PNG), "operations": CHAIN, **overrides}
    fields["image"] = SimpleUploadedFile(*fields["image"])
    return fields


def apply_limits(case, settings):
    if case == "over the byte limit":
        settings.MAX_UPLOAD_BYTES = 500
    if case == "over the pixel limit":
        settings.MAX_IMAGE_PIXELS = 10_000
    if case == "over the side limit":
        settings.MAX_IMAGE_SIDE = 200
    if case == "too many tiles over its stages":
        settings.MAX_TILES_PER_JOB = 10  # 40 × 30 at 16: 3 × 2 tiles in each of 2 stages; at 20, 2 × 2


@pytest.mark.parametrize("case", sorted(BAD))
def test_the_api_refuses_it_clearly_and_keeps_nothing(case, settings, alice_api, media_root):
    apply_limits(case, settings)
    fields, status, message = BAD[case]
    started = time.monotonic()
    response = post_job(alice_api, **submission(fields))
    assert response.status_code == status, response.content
    assert message in response.json()["error"]
    assert time.monotonic() - started < 5  # a bomb is refused from its header, not decoded
    assert not Job.objects.exists()
    assert not any(path.is_file() for path in media_root.rglob("*"))


@pytest.mark.parametrize("case", sorted(BAD))
def test_the_form_refuses_it_clearly_and_keeps_nothing(case, settings, client, alice, media_root):
    apply_limits(case, settings)
    fields, _, message = BAD[case]
    client.force_login(alice)
    response = client.post("/jobs/new/", submission(fields))
    assert response.status_code == 400
    assert message in response.content.decode().replace("&#x27;", "'")
    assert not Job.objects.exists()
    assert not any(path.is_file() for path in media_root.rglob("*"))


def test_a_file_name_is_never_used_as_a_path(alice_api):
    name = "../../etc/pass\x07wd\\..\\evil\r\n.png"
    response = post_job(alice_api, **submission({"image": file(name, PNG)}))
    assert response.status_code == 201
    job = Job.objects.get()
    assert "/" not in job.original_name and "\\" not in job.original_name and "\x07" not in job.original_name
    assert job.original.name == f"originals/{job.pk}.png"


def test_a_request_far_over_the_limit_is_refused_before_its_body_is_read(settings, alice_api, media_root):
    settings.MAX_REQUEST_BYTES = 10
    big = file("huge.png", encoded(noise(1000, 800)))  # about 2.4 MB of noise
    response = post_job(alice_api, **submission({"image": big}))
    assert response.status_code == 413
    assert response.json()["error"].startswith("the request is larger than 10 bytes; send a larger file as a")
    assert not Job.objects.exists()


TOO_MANY_FIELDS = "The number of GET/POST parameters exceeded settings.DATA_UPLOAD_MAX_NUMBER_FIELDS."


def many_fields(count: int) -> dict:
    return submission({}) | {f"f{n}": "x" for n in range(count)}


def many_files(count: int) -> dict:
    return submission({}) | {f"extra{n}": SimpleUploadedFile(f"{n}.png", PNG) for n in range(count)}


@pytest.mark.parametrize(
    "body,content_type,status,message",
    [
        (
            b"--x\r\n",
            "multipart/form-data",
            400,
            "Multipart form parse error - Invalid boundary in multipart: None",
        ),
        (
            b'{"operations": [{"op": "invert"}], "tile_size": 1e400}',
            "application/json",
            400,
            "tile_size must be a whole number",
        ),
        (
            b'{"operations": %s}' % (b"[" * 100_000 + b"]" * 100_000),
            "application/json",
            400,
            "JSON parse error - nested too deeply",
        ),
        (
            b'{"operations": [{"op": "posterize", "bits": NaN}]}',
            "application/json",
            400,
            "JSON parse error - Out of range float values are not JSON compliant: 'NaN'",
        ),
    ],
)
def test_a_malformed_body_is_a_json_error(body, content_type, status, message, alice_api):
    response = alice_api.post("/api/jobs/", body, content_type=content_type)
    assert response.status_code == status, response.content
    assert response.json() == {"error": message}
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "fields,status,message",
    [
        (many_fields(1001), 400, TOO_MANY_FIELDS),
        (many_files(100), 400, "The number of files exceeded settings.DATA_UPLOAD_MAX_NUMBER_FILES."),
    ],
)
def test_a_multipart_body_over_django_limits_is_a_json_error(fields, status, message, alice_api):
    response = post_job(alice_api, **fields)
    assert response.status_code == status, response.content
    assert response.json() == {"error": message}
    assert not Job.objects.exists()


def test_a_multipart_field_over_the_memory_limit_is_a_json_413(settings, alice_api):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = post_job(alice_api, SimpleUploadedFile("ok.png", PNG), operations=CHAIN + " " * 2000)
    assert response.status_code == 413, response.content
    assert response.json() == {"error": "Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE."}


def test_a_browser_session_gets_the_json_error_too(alice):
    client = APIClient(enforce_csrf_checks=True)  # the CSRF check reads the body during authentication
    client.force_login(alice)
    client.get("/jobs/new/")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    response = client.post("/api/jobs/", many_fields(1001), format="multipart", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 400, response.content
    assert response.json() == {"error": TOO_MANY_FIELDS}


def test_a_job_with_exactly_the_most_tiles_is_accepted(settings, alice_api):
    settings.MAX_TILES_PER_JOB = 12  # 40 × 30 at 16: 3 × 2 tiles in each of 2 stages
    chain = {"operations": '[{"op": "invert"}, {"op": "equalize"}]', "tile_size": "16"}
    response = post_job(alice_api, **submission(chain))
    assert response.status_code == 201, response.content
    assert response.json()["tiles_total"] == 12


def test_an_image_decoded_whole_must_fit_the_dispatchers_budget(alice_api, settings):
    settings.DISPATCH_MEMORY_MB = 1  # 1 MB: a 600 × 600 RGB image decoded whole is 1.03 MB
    big_gif = SimpleUploadedFile("big.gif", encoded(noise(600, 600), "GIF"))
    response = post_job(alice_api, big_gif)
    assert response.status_code == 400
    assert "decoded whole" in response.json()["error"] and "DISPATCH_MEMORY_MB" in response.json()["error"]
    # The same pixels as PNG are read in bands: accepted, whatever the budget.
    assert post_job(alice_api, upload(noise(600, 600))).status_code == 201


def test_a_result_encoded_whole_must_fit_its_limit(alice_api, settings):
    settings.RESULT_WHOLE_MB = 1
    for whole in ("webp", "avif", "heic"):
        response = post_job(alice_api, upload(noise(600, 600)), output_format=whole)
        assert response.status_code == 400
        assert "encoded whole" in response.json()["error"] and "RESULT_WHOLE_MB" in response.json()["error"]
    for streamed in ("png", "tiff", "jpeg"):
        assert post_job(alice_api, upload(noise(600, 600)), output_format=streamed).status_code == 201
