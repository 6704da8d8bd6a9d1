"""Jobs made through the real submission path (no Kafka: on_commit never fires in `db` tests)."""

import io

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from jobs.actions import submit as submit_job
from jobs.models import Tile
from pipeline.dispatch import task_messages
from pipeline.messages import Result, Task
from pipeline.worker import process_task
from tests.images import encoded, photo

# The image of the `job` fixture (tests/conftest.py): 6 tiles of 64.
SMALL_PHOTO = photo("camera.png").crop((0, 0, 150, 100))


def upload(image, name="photo.png", fmt="PNG", **options):
    return SimpleUploadedFile(name, encoded(image, fmt, **options), content_type="image/png")


def make_job(owner, image, operations=None, tile_size=64, fmt="PNG", icc=None, **output):
    operations = operations or [{"op": "gaussian_blur", "radius": 2}]
    file = upload(image, fmt=fmt, **({"icc_profile": icc} if icc else {}))
    return submit_job(owner, file, operations, tile_size, **output)


def post_job(client, file=None, operations='[{"op": "invert"}]', **fields):
    """POST /api/jobs/ in-process, as a multipart form; without ``file`` no image is sent."""
    image = {} if file is None else {"image": file}
    return client.post("/api/jobs/", {**image, "operations": operations, **fields}, format="multipart")


def sent(job_id, stage=0) -> str:
    """A stage's tiles not sent yet given a send's nonce, as the dispatcher's claim does (once:
    the same again after); the nonce, which their results must carry to be recorded."""
    nonce = f"test-send-{stage}"
    Tile.objects.filter(job_id=job_id, stage=stage, nonce="").update(nonce=nonce)
    return nonce


def results_for(job, image, stage=0, table=None):
    """Run every tile of a stage through the real worker code, as Kafka would deliver them: each
    answering its tile's last send (the dispatcher's, or one made here for tiles never sent)."""
    sent(job.pk, stage)
    sends: dict[str, set[int]] = {}
    for index, nonce in job.tiles.filter(stage=stage).values_list("index", "nonce"):
        sends.setdefault(nonce, set()).add(index)
    answers = {}
    for nonce, indices in sends.items():
        for index, value in task_messages(job, image, stage, table, indices, nonce):
            result, payload = process_task(*Task.decode(value), f"w{index % 2}", index % 4, index)
            answers[index] = result.encode(payload)
    return [answers[index] for index in sorted(answers)]


def result_bytes(job) -> bytes:
    with job.result.open("rb") as handle:
        return handle.read()


def result_image(job) -> Image.Image:
    """The job's stored result, decoded."""
    return Image.open(io.BytesIO(result_bytes(job)))


def failed_result(job_id, index: int, error: str, worker: str = "w") -> bytes:
    """A worker's report that a tile failed, as it arrives on ``results``."""
    nonce = sent(job_id)
    result = Result(str(job_id), index, worker, 1, task_partition=0, task_offset=0, error=error, nonce=nonce)
    return result.encode()
