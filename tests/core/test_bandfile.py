"""A band of rows on disk gives back exactly the pixels written, for any rows of any columns,
whatever order its blocks were written in."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagepipe.core.bandfile import BandFile

HEIGHT, WIDTH, BANDS = 37, 101, 3
PIXELS = np.random.default_rng(7).integers(0, 256, (HEIGHT, WIDTH, BANDS), dtype=np.uint8)


def written(block: int, order: list[int], strip: int) -> BandFile:
    """The band's pixels written in blocks ``block`` wide, in ``order``, ``strip`` rows at a time."""
    band = BandFile(HEIGHT, WIDTH, BANDS)
    lefts = list(range(0, WIDTH, block))
    for index in order:
        left = lefts[index % len(lefts)]
        for top in range(0, HEIGHT, strip):
            band.write(left, top, PIXELS[top : top + strip, left : left + block])
    return band


@settings(max_examples=60, deadline=None)
@given(
    block=st.integers(1, 120),
    strip=st.integers(1, 40),
    seed=st.randoms(use_true_random=False),
    box=st.tuples(
        st.integers(0, WIDTH - 1), st.integers(0, HEIGHT - 1), st.integers(1, WIDTH), st.integers(1, HEIGHT)
    ),
)
def test_any_window_reads_back_what_was_written(block, strip, seed, box):
    order = list(range(-(-WIDTH // block)))
    seed.shuffle(order)
    band = written(block, order, strip)
    left, top, w, h = box
    right, bottom = min(left + w, WIDTH), min(top + h, HEIGHT)
    assert np.array_equal(band.read(top, bottom, left, right), PIXELS[top:bottom, left:right])
    assert np.array_equal(band.read(0, HEIGHT), PIXELS)
    band.close()


def test_columns_never_written_are_refused_not_made_up():
    band = BandFile(HEIGHT, WIDTH, BANDS)
    band.write(0, 0, PIXELS[:, :40])
    band.write(60, 0, PIXELS[:, 60:])
    assert np.array_equal(band.read(0, HEIGHT, 0, 40), PIXELS[:, :40])
    with pytest.raises(ValueError, match="never written"):
        band.read(0, HEIGHT, 30, 70)


def test_a_block_written_at_another_width_or_past_the_band_is_refused():
    band = BandFile(HEIGHT, WIDTH, BANDS)
    band.write(0, 0, PIXELS[:10, :40])
    with pytest.raises(ValueError, match="do not fit"):
        band.write(0, 10, PIXELS[10:20, :39])
    with pytest.raises(ValueError, match="do not fit"):
        band.write(0, HEIGHT - 5, PIXELS[:10, :40])


def test_overlapping_blocks_each_read_whole_and_together_the_band():
    band = BandFile(HEIGHT, WIDTH, BANDS)
    boxes = [(max(left - 1, 0), min(left + 11, WIDTH)) for left in range(0, WIDTH, 10)]  # a pyramid's tiles
    for left, right in reversed(boxes):
        band.write(left, 0, PIXELS[:, left:right])
    for left, right in boxes:
        assert np.array_equal(band.read(3, 30, left, right), PIXELS[3:30, left:right])
    assert np.array_equal(band.read(0, HEIGHT), PIXELS)


@settings(max_examples=40, deadline=None)
@given(height=st.integers(8, 30), steps=st.lists(st.integers(1, 8), min_size=1, max_size=12))
def test_a_ring_keeps_the_last_rows_written_where_they_were_whatever_the_rows_numbers(height, steps):
    image = np.random.default_rng(height).integers(0, 256, (200, WIDTH, BANDS), dtype=np.uint8)
    band, written = BandFile(height, WIDTH, BANDS, ring=True), 0
    for rows in steps:  # down the image a few rows at a time, as the dispatcher decodes it
        for left in range(0, WIDTH, 32):
            band.write(left, written, image[written : written + rows, left : left + 32])
        written += rows
        kept = max(written - height, 0)  # the oldest row still there
        assert np.array_equal(band.read(kept, written), image[kept:written])
        assert np.array_equal(band.read(kept, written, 40, 70), image[kept:written, 40:70])
