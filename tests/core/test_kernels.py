"""imagepipe.core.kernels: every faster route gives Pillow's bytes, on every mode, size and parameter.

(The tiled-equals-whole property in test_catalogue.py also draws the engine, so each route is
held to the whole-image Pillow reference inside chains, on tiles and with alpha too.)
"""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from imagepipe.core.kernels import ENGINES, FAST
from imagepipe.core.operations import OPERATIONS, Placement
from imagepipe.core.tiling import Box
from tests.images import noise, photo

from .tiled import same_pixels

SIZES = list(range(3, 16, 2))  # every size the catalogue accepts


def speckle(width: int, height: int, mode: str, seed: int) -> Image.Image:
    """Only the extremes and their neighbours: where an off-by-one or a clamp would show."""
    rng = random.Random(seed)
    return Image.frombytes(
        mode, (width, height), bytes(rng.choice((0, 1, 254, 255)) for _ in range(width * height * len(mode)))
    )


def both(name: str, image: Image.Image, size: int) -> tuple[Image.Image, Image.Image]:
    """(the fast route's result, Pillow's) for one operation on one image (``size``: a rank filter's)."""
    params = {"size": size} if any(p.name == "size" for p in OPERATIONS[name].params) else {}
    placement = Placement(Box(0, 0, *image.size), image.size)
    reference = OPERATIONS[name].colour
    assert reference is not None
    return FAST[name](image, params, placement), reference(image, params, placement)


def test_every_route_stands_in_for_a_catalogue_operation_and_pillow_has_none():
    assert set(FAST) <= set(OPERATIONS)
    assert all(OPERATIONS[name].colour is not None for name in FAST)
    assert ENGINES["pillow"] == {}


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(sorted(FAST)),
    mode=st.sampled_from(["L", "RGB"]),  # what colour steps see: alpha is split off before them
    width=st.integers(1, 70),
    height=st.integers(1, 70),
    size=st.sampled_from(SIZES),
    pixels=st.sampled_from([noise, speckle]),
    seed=st.integers(0, 2**16),
)
def test_a_fast_route_gives_pillows_bytes(name, mode, width, height, size, pixels, seed):
    fast, pillow = both(name, pixels(width, height, mode, seed), size)
    assert same_pixels(fast, pillow)


@pytest.mark.parametrize("name", sorted(FAST))
@pytest.mark.parametrize("picture", ["coffee.png", "camera.png", "rocket.jpg"])
@pytest.mark.parametrize("size", [3, 15])  # the rank filters' smallest and largest window
def test_a_fast_route_gives_pillows_bytes_on_real_photos(name, picture, size):
    image = photo(picture)
    for colour in (image.convert("RGB"), image.convert("L")):
        fast, pillow = both(name, colour, size)
        assert same_pixels(fast, pillow)


@pytest.mark.parametrize("name", sorted(FAST))
def test_a_flat_image_stays_flat(name):
    fast, pillow = both(name, Image.new("RGB", (40, 30), (7, 128, 250)), 5)
    assert same_pixels(fast, pillow)
