"""Test images: the committed real photographs and small in-memory factories."""

from __future__ import annotations

import io
import random
from pathlib import Path

from PIL import Image, ImageCms

DATA = Path(__file__).parent / "data"

# A real ICC profile, for uploads and results that carry one.
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def photo(name: str = "coffee.png") -> Image.Image:
    with Image.open(DATA / name) as image:
        image.load()
        return image


def noise(width: int, height: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    """Random pixels: the harshest case for seams, since every pixel differs."""
    rng = random.Random(seed)
    return Image.frombytes(mode, (width, height), rng.randbytes(width * height * len(mode)))


def encoded(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()
