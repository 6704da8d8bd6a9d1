"""imagepipe.core.kernels: every faster route gives Pillow's bytes, on every mode, size and parameter.

(The tiled-equals-whole property in test_catalogue.py also draws the engine, so each route is
held to the whole-image Pillow reference inside chains, on tiles and with alpha too.)
"""

import itertools
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from imagepipe.core.kernels import ENGINES, FAST, unsharp
from imagepipe.core.operations import OPERATIONS, Param, Placement, parse_chain
from imagepipe.core.tiling import Box
from tests.images import noise, photo

from .tiled import same_pixels

RADII = [0, 0.1, 0.5, 1, 1.5, 2, 4, 7.3, 50]
FRACTIONS = [0.1, 0.5, 1.3, 2.7, 7.3]  # radii whose box passes have weighted edge pixels
PERCENTS = [0, 1, 50, 150, 500]
THRESHOLDS = [0, 3, 255]
STRENGTHS = list(itertools.product(PERCENTS, THRESHOLDS))


def speckle(width: int, height: int, mode: str, seed: int) -> Image.Image:
    """Only the extremes and their neighbours: where an off-by-one or a clamp would show."""
    rng = random.Random(seed)
    return Image.frombytes(
        mode, (width, height), bytes(rng.choice((0, 1, 254, 255)) for _ in range(width * height * len(mode)))
    )


def both(name: str, image: Image.Image, params: dict | None = None) -> tuple[Image.Image, Image.Image]:
    """(the fast route's result, Pillow's) for one operation on one image, with ``params`` as a chain
    step gives them (checked and normalised; a missing one takes its default)."""
    step = parse_chain([{"op": name, **(params or {})}])[0]
    placement = Placement(Box(0, 0, *image.size), image.size)
    reference = step.op.colour
    assert reference is not None
    return FAST[name](image, step.params, placement), reference(image, step.params, placement)


def values(param: Param) -> st.SearchStrategy:
    """All a parameter's accepted values, its two ends and (for a radius) a few fractions often."""
    if param.odd:
        return st.sampled_from(range(int(param.minimum), int(param.maximum) + 1, 2))
    ends = st.sampled_from([param.minimum, param.maximum])
    if param.kind is int:
        return ends | st.integers(int(param.minimum), int(param.maximum))
    return ends | st.sampled_from(FRACTIONS) | st.floats(param.minimum, param.maximum)


def routes() -> st.SearchStrategy:
    """A route's name and parameters drawn from its operation's own."""
    return st.sampled_from(sorted(FAST)).flatmap(
        lambda name: st.tuples(
            st.just(name), st.fixed_dictionaries({p.name: values(p) for p in OPERATIONS[name].params})
        )
    )


def test_every_route_stands_in_for_a_catalogue_operation_and_pillow_has_none():
    assert set(FAST) <= set(OPERATIONS)
    assert all(OPERATIONS[name].colour is not None for name in FAST)
    assert ENGINES["pillow"] == {}


@settings(max_examples=500, deadline=None)
@given(
    route=routes(),
    mode=st.sampled_from(["L", "RGB"]),  # what colour steps see: alpha is split off before them
    width=st.integers(1, 70),
    height=st.integers(1, 70),
    pixels=st.sampled_from([noise, speckle]),
    seed=st.integers(0, 2**16),
)
def test_a_fast_route_gives_pillows_bytes(route, mode, width, height, pixels, seed):
    name, params = route
    fast, pillow = both(name, pixels(width, height, mode, seed), params)
    assert same_pixels(fast, pillow)


WINDOWS = [{"size": 3}, {"size": 15}]  # the rank filters' smallest and largest window
ON_PHOTOS: dict[str, list[dict]] = {
    "median": WINDOWS,
    "erode": WINDOWS,
    "dilate": WINDOWS,
    "unsharp_mask": [
        {"radius": 2, "percent": 150, "threshold": 3},
        {"radius": 0.5, "percent": 500, "threshold": 0},
        {"radius": 7.3, "percent": 50, "threshold": 10},
    ],
}


@pytest.mark.parametrize("name", sorted(FAST))
@pytest.mark.parametrize("picture", ["coffee.png", "camera.png", "rocket.jpg"])
def test_a_fast_route_gives_pillows_bytes_on_real_photos(name, picture):
    image = photo(picture)
    for params in ON_PHOTOS.get(name, [{}]):
        for colour in (image.convert("RGB"), image.convert("L")):
            fast, pillow = both(name, colour, params)
            assert same_pixels(fast, pillow), params


@pytest.mark.parametrize("name", sorted(FAST))
def test_a_flat_image_stays_flat(name):
    fast, pillow = both(name, Image.new("RGB", (40, 30), (7, 128, 250)))
    assert same_pixels(fast, pillow)


def edge_sizes() -> list[tuple[int, int]]:
    """Every width and height from 1 to 70 against the narrowest and the widest other side."""
    sides = [(n, other) for n in range(1, 71) for other in (1, 2, 3, 70)]
    return sorted(set(sides) | {(h, w) for w, h in sides})


@pytest.mark.parametrize("mode", ["L", "RGB"])
@pytest.mark.parametrize("radius", RADII)
def test_unsharp_mask_gives_pillows_bytes_at_every_small_size(radius, mode):
    for index, (width, height) in enumerate(edge_sizes()):
        percent, threshold = STRENGTHS[index % len(STRENGTHS)]
        params = {"radius": radius, "percent": percent, "threshold": threshold}
        for image in (noise(width, height, mode, index), speckle(width, height, mode, index)):
            fast, pillow = both("unsharp_mask", image, params)
            assert same_pixels(fast, pillow), (width, height, params)


@pytest.mark.parametrize(("percent", "threshold"), STRENGTHS)
def test_unsharp_mask_gives_pillows_bytes_at_every_strength(percent, threshold):
    for radius, (width, height), mode in itertools.product(
        RADII, [(1, 1), (2, 3), (17, 9), (70, 70)], ["L", "RGB"]
    ):
        params = {"radius": radius, "percent": percent, "threshold": threshold}
        for image in (noise(width, height, mode, width), speckle(width, height, mode, height)):
            fast, pillow = both("unsharp_mask", image, params)
            assert same_pixels(fast, pillow), (width, height, mode, params)


def pillows_step(value: np.ndarray, blurred: np.ndarray, percent: int, threshold: int) -> np.ndarray:
    """UnsharpMask.c's step, written out: ``diff * percent / 100`` truncates toward zero in C."""
    diff = value - blurred
    moved = np.sign(diff) * (np.abs(diff) * percent // 100)
    return np.where(np.abs(diff) > threshold, np.clip(value + moved, 0, 255), value)


@pytest.mark.parametrize("percent", [0, 1, 50, 99, 100, 101, 150, 333, 500])
def test_the_unsharp_step_is_pillows_arithmetic_for_every_pair_of_values(percent):
    value, blurred = (grid.astype(np.uint8) for grid in np.indices((256, 256)))
    for threshold in [0, 1, 3, 127, 254, 255]:
        expected = pillows_step(value.astype(int), blurred.astype(int), percent, threshold)
        assert (unsharp(value, blurred, percent, threshold) == expected).all(), threshold
