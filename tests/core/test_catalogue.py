"""Every operation, any chain, any mode, any tile size: tiled equals whole, and whole equals Pillow."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagepipe.core.chain import apply_chain, fuse_point_runs
from imagepipe.core.kernels import ENGINES
from imagepipe.core.operations import OPERATIONS, catalogue, parse_chain
from tests.images import noise, photo

from .reference import COLOUR, FILTER, GEOMETRIC, RESAMPLE, reference
from .tiled import same_pixels, tiled

PARAMS: dict[str, dict[str, st.SearchStrategy]] = {
    "brightness": {"factor": st.floats(0, 4)},
    "contrast": {"factor": st.floats(0, 4)},
    "autocontrast": {"cutoff": st.floats(0, 49)},
    "saturation": {"factor": st.floats(0, 4)},
    "threshold": {"level": st.integers(0, 255)},
    "posterize": {"bits": st.integers(1, 8)},
    "solarize": {"threshold": st.integers(0, 255)},
    "gaussian_blur": {"radius": st.floats(0, 6)},
    "box_blur": {"radius": st.floats(0, 6)},
    "unsharp_mask": {
        "radius": st.floats(0, 4),
        "percent": st.integers(0, 500),
        "threshold": st.integers(0, 255),
    },
    "median": {"size": st.sampled_from([3, 5, 7])},
    "erode": {"size": st.sampled_from([3, 5, 7])},
    "dilate": {"size": st.sampled_from([3, 5, 7])},
    "pixelate": {"block": st.integers(2, 24)},
    "rotate": {"angle": st.sampled_from([90, 180, 270])},
    # The sizes by width and height, and the scales past 3, are in test_resample.py: kept small here.
    "resize": {
        "scale": st.floats(0.05, 1.5),
        "width": st.just(0),
        "height": st.just(0),
        "filter": st.sampled_from(sorted(FILTER)),
        "aspect": st.just("keep"),
    },
    "crop": {  # inside every image drawn (boxes at every edge: test_resample.py)
        "left": st.just(0),
        "top": st.just(0),
        "width": st.integers(1, 120),
        "height": st.integers(1, 120),
    },
    "thumbnail": {
        "width": st.integers(1, 120),
        "height": st.integers(1, 120),
        "filter": st.sampled_from(sorted(FILTER)),
        "reducing_gap": st.sampled_from([0, 1.0, 1.5, 2.0, 3.0]),
    },
    "fit": {
        "width": st.integers(1, 120),
        "height": st.integers(1, 120),
        "filter": st.sampled_from(sorted(FILTER)),
    },
    "pad": {
        "width": st.integers(1, 120),
        "height": st.integers(1, 120),
        "filter": st.sampled_from(sorted(FILTER)),
        "background": st.sampled_from(["#000000", "#ff8000", "#12345680"]),
    },
}
DEFAULTS = {
    "rotate": {"angle": 90},
    "crop": {"width": 50, "height": 40},
    "thumbnail": {"width": 60, "height": 60},
}
DEFAULTS["fit"] = DEFAULTS["pad"] = DEFAULTS["thumbnail"]


@st.composite
def steps(draw):
    name = draw(st.sampled_from(sorted(OPERATIONS)))
    return {"op": name, **{key: draw(values) for key, values in PARAMS.get(name, {}).items()}}


def test_every_operation_has_a_reference_and_a_strategy():
    assert set(OPERATIONS) == set(COLOUR) | set(GEOMETRIC) | set(RESAMPLE)
    for op in OPERATIONS.values():
        assert {p.name for p in op.params} <= set(PARAMS.get(op.name, {}))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chain=st.lists(steps(), min_size=1, max_size=4),
    width=st.integers(1, 97),
    height=st.integers(1, 83),
    tile_size=st.integers(1, 40),
    mode=st.sampled_from(["L", "LA", "RGB", "RGBA"]),
    seed=st.integers(0, 2**16),
    engine=st.sampled_from(sorted(ENGINES)),
)
def test_any_chain_tiled_equals_the_whole_image_reference(
    chain, width, height, tile_size, mode, seed, engine
):
    image = noise(width, height, mode, seed)
    whole = apply_chain(image, parse_chain(chain))
    assert same_pixels(whole, reference(image, chain))
    assert same_pixels(tiled(image, chain, tile_size, engine), whole)


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_each_operation_on_a_photo_at_an_awkward_tile_size(name, engine):
    image = photo("rocket.jpg")
    chain = [{"op": name, **DEFAULTS.get(name, {})}]
    if name == "resize":
        chain[0]["scale"] = 0.37
    whole = apply_chain(image, parse_chain(chain))
    assert same_pixels(
        whole, reference(image, parse_chain(chain) and [s.to_dict() for s in parse_chain(chain)])
    )
    assert same_pixels(tiled(image, chain, 97, engine), whole)


def test_a_long_chain_with_geometry_before_neighbourhoods_on_a_large_photo():
    image = photo("coffee.png").resize((1999, 1327))
    chain = [
        {"op": "rotate", "angle": 90},
        {"op": "gaussian_blur", "radius": 3},
        {"op": "pixelate", "block": 13},
        {"op": "flip_horizontal"},
        {"op": "median", "size": 5},
        {"op": "invert"},
        {"op": "posterize", "bits": 3},
        {"op": "transpose"},
        {"op": "sharpen"},
        {"op": "grayscale"},
    ]
    assert same_pixels(tiled(image, chain, 256), reference(image, [s.to_dict() for s in parse_chain(chain)]))


def test_the_catalogue_describes_every_parameter():
    described = {entry["op"]: entry for entry in catalogue()}
    assert described["gaussian_blur"]["params"] == [
        {"name": "radius", "type": "float", "min": 0, "max": 50, "default": 2}
    ]
    assert described["median"]["params"][0]["odd"] is True
    assert described["rotate"]["params"][0]["choices"] == [90, 180, 270]
    assert described["pixelate"]["kind"] == "position"


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chain=st.lists(steps(), min_size=1, max_size=3),
    width=st.sampled_from([1009, 1999, 2003, 3001]),
    height=st.sampled_from([1, 997, 1511]),
    tile_size=st.integers(128, 700),
    mode=st.sampled_from(["L", "RGBA"]),
    engine=st.sampled_from(sorted(ENGINES)),
)
def test_large_prime_sized_images_tile_invisibly_too(chain, width, height, tile_size, mode, engine):
    image = noise(width, height, mode)
    assert same_pixels(tiled(image, chain, tile_size, engine), reference(image, chain))


def test_a_run_of_per_band_point_operations_is_one_pass():
    chain = parse_chain(
        [
            {"op": "invert"},
            {"op": "posterize", "bits": 3},
            {"op": "solarize"},
            {"op": "brightness", "factor": 1.3},
            {"op": "gaussian_blur"},
            {"op": "invert"},
        ]
    )
    assert [step.op.name for step in fuse_point_runs(chain)] == ["fused", "gaussian_blur", "invert"]
