import pytest

from imagepipe.core.tiling import Box, grid_shape, tile_grid


def covered(tiles, width, height):
    pixels = [0] * (width * height)
    for tile in tiles:
        for y in range(tile.core.top, tile.core.bottom):
            for x in range(tile.core.left, tile.core.right):
                pixels[y * width + x] += 1
    return pixels


@pytest.mark.parametrize(
    "width,height,size,halo",
    [(1, 1, 512, 0), (1, 1, 512, 30), (7, 5, 2, 1), (100, 37, 32, 0), (33, 65, 32, 40), (512, 512, 512, 9)],
)
def test_cores_cover_every_pixel_exactly_once(width, height, size, halo):
    assert set(covered(tile_grid(width, height, size, halo), width, height)) == {1}


def test_it_leaves_partial_tiles_at_the_right_and_bottom_edges():
    tiles = tile_grid(1000, 700, 300)
    assert grid_shape(1000, 700, 300) == (4, 3)
    assert len(tiles) == 12
    assert tiles[3].core == Box(900, 0, 1000, 300)
    assert tiles[-1].core == Box(900, 600, 1000, 700)
    assert [t.index for t in tiles] == list(range(12))
    assert (tiles[5].col, tiles[5].row) == (1, 1)


def test_padding_grows_by_the_halo_and_is_clipped_to_the_image():
    tiles = tile_grid(1000, 700, 300, halo=12)
    assert tiles[0].padded == Box(0, 0, 312, 312)
    assert tiles[5].padded == Box(288, 288, 612, 612)
    assert tiles[-1].padded == Box(888, 588, 1000, 700)


def test_a_halo_larger_than_the_tile_reaches_across_several_tiles():
    tiles = tile_grid(100, 100, 10, halo=25)
    middle = tiles[55]
    assert middle.core == Box(50, 50, 60, 60)
    assert middle.padded == Box(25, 25, 85, 85)
    assert middle.core.relative_to(middle.padded) == Box(25, 25, 35, 35)


def test_a_one_pixel_image_is_one_tile():
    (tile,) = tile_grid(1, 1, 512, halo=20)
    assert tile.core == tile.padded == Box(0, 0, 1, 1)
    assert tile.core.relative_to(tile.padded) == Box(0, 0, 1, 1)


def test_a_tall_thin_image_is_a_column_of_tiles():
    tiles = tile_grid(1, 100_000, 512)
    assert len(tiles) == 196
    assert tiles[-1].core == Box(0, 99_840, 1, 100_000)


@pytest.mark.parametrize("width,height,size", [(0, 5, 10), (5, -1, 10), (5, 5, 0)])
def test_it_rejects_impossible_sizes(width, height, size):
    with pytest.raises(ValueError):
        tile_grid(width, height, size)


def test_it_rejects_a_negative_halo():
    with pytest.raises(ValueError):
        tile_grid(10, 10, 5, halo=-1)
