"""Input normalisation: every upload becomes L, LA, RGB or RGBA, upright, once.

Done on upload, before tiling, so workers only ever see the four modes the
catalogue is defined on.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from .operations import without_alpha

KEPT = ("L", "LA", "RGB", "RGBA")
TO_RGB = ("CMYK", "YCbCr", "LAB", "HSV", "RGBX")
SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")
ORIENTATION = 0x0112  # the EXIF tag exif_transpose reads
TURNED = (5, 6, 7, 8)  # orientations exif_transpose turns by a quarter: width and height swap
ICC_SPACES = {"L": b"GRAY", "RGB": b"RGB "}  # colour bands -> ICC header colour space


class NormaliseError(ValueError):
    """An image ImagePipe cannot represent; the message is shown to the user."""


def normalise(image: Image.Image) -> Image.Image:
    """Apply EXIF orientation and bring the image to L, LA, RGB or RGBA (see README)."""
    profile = image.info.get("icc_profile")
    image = ImageOps.exif_transpose(image)
    image = _convert(image)
    image.info = {"icc_profile": profile} if profile else {}  # EXIF and the rest are not carried
    return image


def normalised_shape(image: Image.Image) -> tuple[str, tuple[int, int]]:
    """The mode and size ``normalise`` will give an image, read from what Pillow found in its header.

    Only a 16-bit image's values are not known yet, so ``normalise`` may still refuse it. A PNG's
    metadata after its pixels is not in its header: the caller opens its chunks without the pixels
    (``jobs.uploads.png_metadata``) and hands that image here.
    """
    width, height = image.size
    return target_mode(image), (height, width) if _turned_on_load(image) else (width, height)


def _turned_on_load(image: Image.Image) -> bool:
    """Whether decoding will swap the image's width and height (EXIF or XMP orientation)."""
    if image.format == "TIFF":
        return False  # Pillow's TIFF plugin gives the turned size already, and turns it as it decodes
    # Image's own getexif (EXIF, then XMP, as exif_transpose reads them): the PNG plugin's decodes
    # the pixels when it finds no eXIf ahead of them, in case one follows.
    return Image.Image.getexif(image).get(ORIENTATION, 1) in TURNED


def target_mode(image: Image.Image) -> str:
    """Which of the four working modes an image of this mode becomes."""
    mode = image.mode
    if mode in KEPT:
        return mode
    if mode in ("1", *SIXTEEN_BIT):
        return "L"
    if mode == "P":
        return "RGBA" if "transparency" in image.info else "RGB"
    if mode == "PA":
        return "RGBA"
    if mode in TO_RGB:
        return "RGB"
    raise NormaliseError(f"image mode {mode} cannot be processed (float or unusual images are not supported)")


def _convert(image: Image.Image) -> Image.Image:
    mode = target_mode(image)
    if mode == image.mode:
        return image
    if image.mode in SIXTEEN_BIT:
        return Image.fromarray(sixteen_to_eight(np.asarray(image), image.mode), "L")
    return image.convert(mode)


def sixteen_to_eight(values: np.ndarray, mode: str = "I;16") -> np.ndarray:
    """16-bit grayscale values to 8 bits by rounding ``(v + 128) // 257``, never clipping."""
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise NormaliseError(f"image mode {mode} holds values outside 16 bits; it cannot be processed")
    return ((values.astype(np.int64) + 128) // 257).astype(np.uint8)


def output_profile(profile: bytes | None, mode: str) -> bytes | None:
    """The input's ICC profile, if it still describes the output's colour space."""
    if profile and len(profile) >= 20 and profile[16:20] == ICC_SPACES.get(without_alpha(mode)):
        return profile
    return None
