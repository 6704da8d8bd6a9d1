import numpy as np
import pytest

from imagepipe.core.codec import CodecError, array_parts, decode_array, decode_raw, encode_array, encode_raw
from tests.images import noise


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_a_tile_survives_the_round_trip_exactly(mode):
    tile = noise(37, 19, mode)
    back = decode_raw(encode_raw(tile))
    assert (back.mode, back.size, back.tobytes()) == (mode, (37, 19), tile.tobytes())


def test_raw_payload_is_header_plus_pixels():
    assert len(encode_raw(noise(10, 4, "RGB"))) == 12 + 10 * 4 * 3


@pytest.mark.parametrize("data", [b"", b"IPT1", b"XXXX" + bytes(20), encode_raw(noise(4, 4))[:-1]])
def test_it_refuses_bytes_it_did_not_write(data):
    with pytest.raises(CodecError):
        decode_raw(data)


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_arrays_are_the_same_tiles_as_images(mode):
    tile = noise(37, 19, mode)
    pixels = np.asarray(tile).reshape(19, 37, len(mode))
    assert encode_array(mode, pixels) == encode_raw(tile)
    got_mode, got = decode_array(encode_raw(tile))
    assert got_mode == mode and got.shape == (19, 37, len(mode)) and got.tobytes() == tile.tobytes()


@pytest.mark.parametrize(
    ("mode", "pixels"),
    [
        ("RGB", np.zeros((4, 4, 4), np.uint8)),
        ("L", np.zeros((4, 4), np.uint16)),
        ("P", np.zeros((4, 4), np.uint8)),
    ],
)
def test_an_array_that_is_not_its_mode_is_refused(mode, pixels):
    with pytest.raises(CodecError):
        encode_array(mode, pixels)


def test_a_tile_in_pieces_joins_to_the_tile_and_its_pixels_are_copied_once():
    pixels = np.arange(6 * 5 * 3, dtype=np.uint8).reshape(6, 5, 3)
    header, rows = array_parts("RGB", pixels[:, 1:4])  # a window: not contiguous, so copied
    assert memoryview(rows).c_contiguous and b"".join([header, rows]) == encode_array("RGB", pixels[:, 1:4])
    assert not np.shares_memory(np.asarray(rows), pixels)
    whole = array_parts("RGB", pixels)[1]
    assert np.shares_memory(np.asarray(whole), pixels)  # contiguous: not copied here, only when joined
