"""The core promise, without Kafka: tiling is invisible in the output."""

import pytest
from PIL import ImageFilter

from imagepipe.core.chain import apply_chain
from imagepipe.core.operations import parse_chain
from imagepipe.core.pipeline import assemble, cut_tile, process_tile
from imagepipe.core.tiling import tile_grid
from tests.images import noise, photo

from .tiled import same_pixels, tiled


@pytest.mark.parametrize("radius", [0, 0.3, 0.5, 1, 1.5, 2, 2.7, 4, 7.5, 10, 13])
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_gaussian_blur_is_pixel_identical_at_every_radius(radius, mode):
    image = noise(150, 110, mode, seed=int(radius * 10))
    chain = [{"op": "gaussian_blur", "radius": radius}]
    assert same_pixels(tiled(image, chain, 32), image.filter(ImageFilter.GaussianBlur(radius)))


@pytest.mark.parametrize("tile_size", [1, 7, 64, 100, 333, 1024])
def test_a_photo_chain_is_pixel_identical_at_every_tile_size(tile_size):
    image = photo("coffee.png").crop((0, 0, 333, 217)) if tile_size < 7 else photo("coffee.png")
    chain = [{"op": "gaussian_blur", "radius": 3}, {"op": "grayscale"}, {"op": "gaussian_blur", "radius": 1}]
    assert same_pixels(tiled(image, chain, tile_size), apply_chain(image, parse_chain(chain)))


def test_large_radii_blur_across_many_small_tiles():
    image = photo("camera.png")
    chain = [{"op": "gaussian_blur", "radius": 50}]
    assert same_pixels(tiled(image, chain, 64), image.filter(ImageFilter.GaussianBlur(50)))


def test_without_a_halo_the_seams_show():
    """Guards the test itself: tiling without context must differ from the reference."""
    image = photo("coffee.png")
    steps = parse_chain([{"op": "gaussian_blur", "radius": 4}])
    tiles = tile_grid(image.width, image.height, 128, halo=0)
    done = ((t.core, process_tile(cut_tile(image, t), steps, t.padded, t.core, image.size)) for t in tiles)
    assert not same_pixels(assemble(image.size, "RGB", done), image.filter(ImageFilter.GaussianBlur(4)))


def test_one_by_one_images_pass_through_every_operation():
    image = noise(1, 1)
    chain = [{"op": "gaussian_blur", "radius": 5}, {"op": "grayscale"}]
    assert same_pixels(tiled(image, chain, 512), apply_chain(image, parse_chain(chain)))
