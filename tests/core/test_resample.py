"""resize, crop, thumbnail and fit in tiles: byte for byte Pillow's own calls on the whole image,
for every filter, scale (up, down, non-integer, extreme) and mode; bad geometry refused with why."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from imagepipe.core.chain import apply_chain
from imagepipe.core.operations import ChainError, parse_chain
from imagepipe.core.pipeline import stage_grid
from imagepipe.core.resample import FILTERS, Axis
from tests.images import noise

from .reference import reference
from .tiled import same_pixels, tiled

MODES = ["L", "LA", "RGB", "RGBA"]
SCALES = [1 / 37, 0.25, 0.5, 0.73, 1, 1.37, 2, 9]


def exact(image, chain, tile_size):
    steps = parse_chain(chain)
    whole = apply_chain(image, steps)
    assert same_pixels(whole, reference(image, [step.to_dict() for step in steps]))  # with its defaults
    assert same_pixels(tiled(image, chain, tile_size), whole)
    return whole


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scale", SCALES, ids=lambda s: f"{s:.3g}")
@pytest.mark.parametrize("name", sorted(FILTERS))
def test_every_filter_at_every_scale_in_every_mode_equals_pillow(name, scale, mode):
    image = noise(74, 53, mode, seed=7) if scale < 9 else noise(19, 13, mode, seed=7)
    whole = exact(image, [{"op": "resize", "scale": scale, "filter": name}], 16)
    assert whole.size == (max(1, round(image.width * scale)), max(1, round(image.height * scale)))


@settings(max_examples=120, deadline=None)
@given(
    width=st.integers(1, 60),
    height=st.integers(1, 60),
    out=st.tuples(st.integers(1, 90), st.integers(1, 90)),
    name=st.sampled_from(sorted(FILTERS)),
    aspect=st.sampled_from(["keep", "ignore"]),
    which=st.sampled_from(["width", "height", "both"]),
    tile_size=st.integers(5, 40),  # one-pixel tiles: test_catalogue.py
    mode=st.sampled_from(MODES),
)
def test_a_resize_to_any_width_or_height_equals_pillow(
    width, height, out, name, aspect, which, tile_size, mode
):
    step = {"op": "resize", "filter": name, "aspect": aspect}
    step |= {"width": out[0]} if which != "height" else {}
    step |= {"height": out[1]} if which != "width" else {}
    exact(noise(width, height, mode, seed=width * height), [step], tile_size)


def test_chains_that_mix_resampling_with_neighbourhood_global_and_geometric_steps_stay_exact():
    image = noise(90, 70, "RGBA", seed=3)
    chain = [
        {"op": "gaussian_blur", "radius": 1.5},
        {"op": "resize", "scale": 1.37, "filter": "lanczos"},
        {"op": "median", "size": 3},
        {"op": "equalize"},
        {"op": "rotate", "angle": 90},
        {"op": "thumbnail", "width": 41, "height": 33, "reducing_gap": 1.5},
        {"op": "pixelate", "block": 3},
        {"op": "fit", "width": 20, "height": 29, "filter": "hamming"},
        {"op": "crop", "left": 3, "top": 2, "width": 11, "height": 90},
    ]
    assert exact(image, chain, 13).size == (11, 27)


@pytest.mark.parametrize(
    "box",
    [
        (0, 0, 20, 15),
        (30, 0, 40, 15),
        (0, 33, 40, 20),
        (30, 33, 40, 20),
        (5, 5, 1, 1),
        (0, 0, 60, 50),
        (39, 39, 1, 1),
    ],
    ids=[
        "top left",
        "top right edge",
        "bottom edge",
        "bottom right, clamped",
        "one pixel",
        "all of it",
        "last pixel",
    ],
)
def test_crop_at_every_edge_clamps_to_the_image(box):
    left, top, width, height = box
    step = {"op": "crop", "left": left, "top": top, "width": width, "height": height}
    whole = exact(noise(40, 40, "RGB", seed=1), [step], 7)
    assert whole.size == (min(left + width, 40) - left, min(top + height, 40) - top)


@pytest.mark.parametrize("size", [(1, 1), (1, 1000), (1000, 1), (7, 3), (33, 17), (100, 100)])
@pytest.mark.parametrize("gap", [0, 1.0, 2.0, 3.0])
@pytest.mark.parametrize("mode", MODES)
def test_a_thumbnail_of_odd_sizes_equals_image_thumbnail(size, gap, mode):
    step = {"op": "thumbnail", "width": size[0], "height": size[1], "reducing_gap": gap}
    image = noise(97, 61, mode, seed=5)
    whole = exact(image, [step], 16)
    assert whole.width <= max(size[0], 1) and whole.height <= max(size[1], 1) or whole.size == image.size


@pytest.mark.parametrize("box", [(90, 20), (20, 90), (74, 53), (150, 151), (1, 1)])
@pytest.mark.parametrize("background", ["#000000", "#20c0ff", "#20c0ff80"])
@pytest.mark.parametrize("mode", MODES)
def test_pad_centres_the_contained_image_on_its_background(box, background, mode):
    step = {"op": "pad", "width": box[0], "height": box[1], "filter": "lanczos", "background": background}
    whole = exact(noise(74, 53, mode, seed=2), [step], 16)  # tiles of 16: many all background
    assert whole.size == box


def test_a_resampling_stage_reads_windows_about_a_tile_across_at_any_scale():
    steps = parse_chain([{"op": "resize", "scale": 1 / 37, "filter": "lanczos"}])
    grid = stage_grid(steps, (6000, 4000), 512)
    assert {(spec.core.width, spec.core.height) for spec in grid} >= {(16, 16)}
    # 16 pixels at least, each 37 input pixels, and the filter's reach of 3 × 37 to either side
    assert max(spec.read.width for spec in grid) <= 16 * 37 + 2 * 3 * 37 + 1
    for spec in grid:  # every window inside the input
        assert 0 <= spec.read.left < spec.read.right <= 6000 and 0 <= spec.read.top < spec.read.bottom <= 4000


def test_taps_beyond_a_sample_s_reach_weigh_nothing():
    axis = Axis(50, 0.0, 50.0, 7, "lanczos")
    low, weights = axis.taps(0, 7)
    assert (weights.sum(axis=1) - (1 << 22)).__abs__().max() <= weights.shape[1]  # each sums to one
    assert low[0] == 0 and axis.window(0, 7) == (0, 50)


@pytest.mark.parametrize(
    "step,why",
    [
        ({"op": "resize"}, "give a width, a height or a scale"),
        ({"op": "resize", "width": 0, "height": 0}, "give a width, a height or a scale"),
        ({"op": "resize", "width": 10**9}, "between 0 and 100000"),
        ({"op": "resize", "scale": math.nan}, "finite number"),
        ({"op": "resize", "scale": 2, "width": 10}, "not both"),
        ({"op": "resize", "scale": 1, "filter": "sharpest"}, "must be one of nearest, box"),
        ({"op": "resize", "scale": 1, "filter": 3}, "must be one of"),
        ({"op": "crop", "left": 0, "top": 0, "width": 0, "height": 5}, "between 1 and 100000"),
        ({"op": "crop", "left": 40, "top": 0, "width": 5, "height": 5}, "lies outside the 40×30 image"),
        ({"op": "thumbnail", "width": 10}, "'height' is required"),
        ({"op": "pad", "width": 10, "height": 10, "background": "red"}, "must be a colour: #rrggbb"),
        ({"op": "pad", "width": 10, "height": 10, "background": 255}, "must be a colour"),
        ({"op": "thumbnail", "width": 10, "height": 10, "reducing_gap": 0.5}, r"0 \(none\) or at least 1"),
    ],
)
def test_bad_resampling_parameters_are_refused_with_the_reason(step, why):
    with pytest.raises(ChainError, match=why):
        apply_chain(noise(40, 30, "RGB"), parse_chain([step]))


def test_an_image_with_alpha_is_resized_premultiplied_as_pillow_does():
    image = Image.new("RGBA", (8, 1), (255, 0, 0, 0))
    image.putpixel((4, 0), (0, 0, 255, 255))  # invisible red beside opaque blue: no red bleeds in
    whole = exact(image, [{"op": "resize", "width": 16, "filter": "bilinear"}], 3)
    assert all(pixel[0] == 0 for pixel in whole.get_flattened_data() if pixel[3])
