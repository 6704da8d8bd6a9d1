"""The collector's step functions, called directly against the real database."""

import io

import pytest
from django.core.files.storage import default_storage
from PIL import Image, ImageFilter

from imagepipe.core.messages import Heartbeat, MessageError, Result
from jobs.collector import record_heartbeat, record_result
from jobs.dispatch import task_messages
from jobs.models import Job, Tile
from tests.images import photo
from workers.models import Worker
from workers.worker import process_task

from .factories import make_job

pytestmark = pytest.mark.django_db


def results_for(job, image):
    """Run every tile through the real worker code, as Kafka would deliver them."""
    from imagepipe.core.tiling import tile_grid

    specs = tile_grid(job.width, job.height, job.tile_size, job.halo)
    return [
        process_task(value, f"w{spec.index % 2}", spec.index % 4, spec.index)[1]
        for spec, value in task_messages(job, image, specs)
    ]


@pytest.fixture
def job(django_user_model):
    owner = django_user_model.objects.create_user("owner")
    return make_job(owner, photo("camera.png").crop((0, 0, 150, 100)), tile_size=64)


def test_the_last_tile_assembles_a_pixel_identical_result(job):
    image = photo("camera.png").crop((0, 0, 150, 100))
    for value in results_for(job, image):
        record_result(value)
    job.refresh_from_db()
    assert (job.status, job.tiles_done, job.tiles_total) == (Job.Status.DONE, 6, 6)
    with job.result.open("rb") as handle:
        result = Image.open(io.BytesIO(handle.read()))
        assert result.tobytes() == image.filter(ImageFilter.GaussianBlur(2)).tobytes()
    assert job.started_at and job.finished_at
    stored = [tile.result.name for tile in job.tiles.all()]
    assert len(stored) == 6 and not any(default_storage.exists(name) for name in stored)


def test_it_ignores_a_duplicate_result(job):
    first = results_for(job, photo("camera.png").crop((0, 0, 150, 100)))[0]
    record_result(first)
    record_result(first)
    job.refresh_from_db()
    assert job.tiles_done == 1
    assert job.status == Job.Status.RUNNING
    assert Tile.objects.get(job=job, index=0).status == Tile.Status.DONE


def test_an_error_result_fails_the_job_with_the_reason(job):
    record_result(
        Result(
            job=str(job.pk),
            index=2,
            worker="w9",
            duration_ms=1,
            task_partition=0,
            task_offset=0,
            error="ValueError: boom",
        ).encode()
    )
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error == "tile 2 failed on w9: ValueError: boom"


def test_a_result_for_an_unknown_job_changes_nothing(job):
    record_result(
        Result(
            job="00000000-0000-0000-0000-000000000000",
            index=0,
            worker="w",
            duration_ms=1,
            task_partition=0,
            task_offset=0,
        ).encode(b"")
    )
    assert Tile.objects.filter(status=Tile.Status.DONE).count() == 0


def test_a_malformed_result_raises_for_the_loop_to_skip():
    with pytest.raises(MessageError):
        record_result(b"not an envelope")


def test_a_heartbeat_records_the_worker():
    record_heartbeat(Heartbeat(worker="w1", host="box", pid=7, tiles_done=3, partitions=[1, 2]).encode())
    worker = Worker.objects.get(pk="w1")
    assert (worker.host, worker.tiles_done, worker.partitions, worker.status) == ("box", 3, [1, 2], "online")
