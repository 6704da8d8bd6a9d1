"""pipeline.stages.stage_input: the first stage's input is the original, decoded and checked against
its header (the web process never decodes it), its previews made from it; a later stage's tiles are
the same bytes whether they are cut from the rebuilt image or taken as the stage before stored them."""

import io

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from jobs import actions, previews
from pipeline.assembly import next_stage_input
from pipeline.collector import record_result
from pipeline.dispatch import task_messages
from pipeline.messages import Task
from pipeline.stages import OriginalError, StoredTiles, stage_input, stored_tiles
from tests.images import encoded, garbled_tiff, noise, photo
from tests.jobs.factories import make_job, results_for

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("chain", "tile_size", "stored"),
    [
        ([{"op": "gaussian_blur", "radius": 2}, {"op": "equalize"}], 64, True),  # no halo, nothing moved
        (
            [
                {"op": "autocontrast", "cutoff": 1},
                {"op": "median", "size": 3},
                {"op": "equalize"},
                {"op": "invert"},
            ],
            48,
            True,
        ),
        ([{"op": "rotate", "angle": 90}, {"op": "equalize"}], 64, False),  # the grid turned: cut again
        (
            [{"op": "sharpen"}, {"op": "equalize"}, {"op": "box_blur", "radius": 1}],
            64,
            False,
        ),  # a halo: cut again
        ([{"op": "flip_horizontal"}, {"op": "sharpen"}, {"op": "equalize"}], 64, False),  # the tiles moved
    ],
)
def test_a_later_stage_sends_the_same_tiles_either_way(alice, chain, tile_size, stored, caplog):
    image = photo("coffee.png").crop((0, 0, 200, 130))
    job = make_job(alice, image, operations=chain, tile_size=tile_size)
    original, table = stage_input(job, 0)  # with the upload's own table, if it needs one
    for value in results_for(job, original, 0, table):
        record_result(value)
    job.refresh_from_db()
    assert job.stage == 1

    caplog.set_level("INFO", "pipeline.dispatch")
    source, table = stage_input(job, 1)
    stage_tiles, rebuilt_table = next_stage_input(job, 0)
    rebuilt = stage_tiles.crop((0, 0, *stage_tiles.size))  # the stage's output, whole
    assert isinstance(source, StoredTiles) is stored and (stored_tiles(job, 1) is not None) is stored
    assert "is the stored tiles before it" in caplog.text if stored else "read from the tiles" in caplog.text
    assert table == rebuilt_table
    sent = [Task.decode(value) for _, value in task_messages(job, source, 1, table)]
    expected = [Task.decode(value) for _, value in task_messages(job, rebuilt, 1, rebuilt_table)]
    assert sent == expected and len(sent) == len(job.stage_tiles(1))


def test_a_stage_of_rgba_tiles_is_passed_on_with_its_alpha(alice):
    image = noise(90, 70, "RGBA", seed=5)
    job = make_job(alice, image, operations=[{"op": "sharpen"}, {"op": "equalize"}], tile_size=32)
    for value in results_for(job, image):
        record_result(value)
    job.refresh_from_db()
    source, table = stage_input(job, 1)
    rebuilt, _ = next_stage_input(job, 0)
    assert isinstance(source, StoredTiles)
    assert list(task_messages(job, source, 1, table)) == list(task_messages(job, rebuilt, 1, table))


def submitted(owner, data: bytes):
    return actions.submit(owner, SimpleUploadedFile("upload", data), [{"op": "invert"}])


def test_an_original_garbled_where_only_decoding_sees_it_fails_with_the_decoders_reason(alice):
    job = submitted(alice, garbled_tiff(40, 30))  # the request reads no pixel: accepted
    with pytest.raises(OriginalError, match="^the original could not be decoded: .*code not yet in table"):
        stage_input(job, 0)


def test_an_original_that_decodes_to_another_shape_than_its_header_said_fails_naming_both(alice):
    job = submitted(alice, encoded(noise(40, 30)))
    with job.original.open("wb") as handle:  # what a header could hide: another size
        handle.write(encoded(noise(30, 40)))
    with pytest.raises(OriginalError) as refused:
        stage_input(job, 0)
    assert str(refused.value) == (
        "the original decodes to a 30×40 RGB image, not the 40×30 RGB image its header declared"
    )


def test_the_first_stage_input_makes_the_originals_previews_once(alice):
    job = make_job(alice, noise(400, 300, "RGBA"))
    stage_input(job, 0)  # the dispatcher, about to cut the first tiles
    data, content_type = previews.stored_preview(job, "original", 160)
    assert content_type == "image/png" and Image.open(io.BytesIO(data)).size == (160, 120)
    with default_storage.open(previews.preview_name(job, "original", 160), "wb") as handle:
        handle.write(b"made before")
    stage_input(job, 0)  # decoded again (the dispatcher's cache let it go): the previews stay
    assert previews.stored_preview(job, "original", 160)[0] == b"made before"
