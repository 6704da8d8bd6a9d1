"""Deterministic photo-like test images, Pillow only.

Not flat (every codec wins on flat images) and not pure noise (none does): a
smooth sky-to-ground gradient, a few blurred blobs and hard-edged shapes drawn
at low resolution and upscaled with BICUBIC, a soft texture, then a little grain
(uniform, +-6 levels, like sensor noise).  Same seed, same pixels.  A 6000 x 4000
image takes about a second.

    python -m bench.photo out.png [--width 6000 --height 4000 --seed 0]  # or out.jpg (quality 90)
"""

from __future__ import annotations

import argparse
import random

from PIL import Image, ImageChops, ImageDraw, ImageFilter

_SMALL = 400  # long side of the low-resolution sketch
_GRAIN = 6  # fine noise amplitude, in levels
_TEXTURE = 12  # texture noise: one random value per _TEXTURE pixels, smoothed ...
_TEXTURE_LEVELS = 12  # ... with this amplitude


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randrange(256), rng.randrange(256), rng.randrange(256))


def _centred(amplitude: int) -> list[int]:
    """A point() table mapping uniform bytes to 128 +- amplitude, for all three bands."""
    return [128 + round((v - 127.5) * amplitude / 128) for v in range(256)] * 3


def _sketch(width: int, height: int, rng: random.Random) -> Image.Image:
    """A small picture: gradient background, soft blobs, a few sharper shapes."""
    top, bottom = _colour(rng), _colour(rng)
    column = Image.new("RGB", (1, height))
    column.putdata(
        [
            tuple(round(a + (b - a) * y / max(height - 1, 1)) for a, b in zip(top, bottom, strict=True))
            for y in range(height)
        ]
    )
    image = column.resize((width, height), Image.Resampling.NEAREST)
    blobs = Image.new("RGB", (width, height))
    mask = Image.new("L", (width, height))
    draw_blobs, draw_mask = ImageDraw.Draw(blobs), ImageDraw.Draw(mask)
    for _ in range(12):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(0.05, 0.25) * max(width, height)
        draw_blobs.ellipse((x - r, y - r, x + r, y + r), fill=_colour(rng))
        draw_mask.ellipse((x - r, y - r, x + r, y + r), fill=rng.randrange(80, 200))
    radius = max(width, height) / 40
    soften = ImageFilter.GaussianBlur(radius)
    image.paste(blobs.filter(soften), mask=mask.filter(soften))
    draw = ImageDraw.Draw(image)
    for _ in range(6):  # some edges, like buildings or branches
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        w, h = rng.uniform(5, width / 5), rng.uniform(5, height / 5)
        draw.rectangle((x, y, x + w, y + h), fill=_colour(rng))
        draw.line(
            (rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0, width), rng.uniform(0, height)),
            fill=_colour(rng),
            width=2,
        )
    return image.filter(ImageFilter.GaussianBlur(0.7))


def photo_like(width: int, height: int, seed: int = 0) -> Image.Image:
    """An RGB ``width`` x ``height`` image that compresses and filters like a photo."""
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    rng = random.Random(seed)
    scale = min(1.0, _SMALL / max(width, height))
    small = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = _sketch(*small, rng).resize((width, height), Image.Resampling.BICUBIC)
    coarse = (max(1, width // _TEXTURE), max(1, height // _TEXTURE))
    texture = Image.frombytes("RGB", coarse, rng.randbytes(coarse[0] * coarse[1] * 3))
    texture = texture.point(_centred(_TEXTURE_LEVELS)).resize((width, height), Image.Resampling.BICUBIC)
    image = ImageChops.add(image, texture, scale=1.0, offset=-128)
    # Grain: uniform noise of +-_GRAIN levels from our own seeded RNG (effect_noise
    # uses C rand(), whose sequence we don't control), added around zero.
    noise = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    noise = noise.point(_centred(_GRAIN))
    return ImageChops.add(image, noise, scale=1.0, offset=-128)


def main() -> None:
    parser = argparse.ArgumentParser(description="Save a photo-like test image.")
    parser.add_argument("path")
    parser.add_argument("--width", type=int, default=6000)
    parser.add_argument("--height", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    photo_like(args.width, args.height, args.seed).save(args.path, compress_level=1, quality=90)


if __name__ == "__main__":
    main()
