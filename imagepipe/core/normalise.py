"""Input normalisation: every upload becomes L, LA, RGB or RGBA, upright, once.

Done on upload, before tiling, so workers only ever see the four modes the
catalogue is defined on.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

KEPT = ("L", "LA", "RGB", "RGBA")
TO_RGB = ("CMYK", "YCbCr", "LAB", "HSV", "RGBX")
SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")
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


def _convert(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode in KEPT:
        return image
    if mode == "1":
        return image.convert("L")
    if mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    if mode == "PA":
        return image.convert("RGBA")
    if mode in TO_RGB:
        return image.convert("RGB")
    if mode in SIXTEEN_BIT:
        return _sixteen_to_eight(image)
    raise NormaliseError(f"image mode {mode} cannot be processed (float or unusual images are not supported)")


def _sixteen_to_eight(image: Image.Image) -> Image.Image:
    """16-bit grayscale to 8 bits by rounding ``(v + 128) // 257``, never clipping."""
    values = np.asarray(image).astype(np.int64)
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise NormaliseError(f"image mode {image.mode} holds values outside 16 bits; it cannot be processed")
    return Image.fromarray(((values + 128) // 257).astype(np.uint8), "L")


def output_profile(profile: bytes | None, mode: str) -> bytes | None:
    """The input's ICC profile, if it still describes the output's colour space."""
    colour = mode[:-1] if mode in ("LA", "RGBA") else mode
    if profile and len(profile) >= 20 and profile[16:20] == ICC_SPACES.get(colour):
        return profile
    return None
