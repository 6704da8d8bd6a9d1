"""Jobs made through the real submission path (no Kafka: on_commit never fires in `db` tests)."""

import io

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from jobs.services import submit_job
from tests.images import encoded


def upload(image, name="photo.png", fmt="PNG", **options):
    return SimpleUploadedFile(name, encoded(image, fmt, **options), content_type="image/png")


def make_job(owner, image, operations=None, tile_size=64, fmt="PNG", icc=None, **output):
    operations = operations or [{"op": "gaussian_blur", "radius": 2}]
    file = upload(image, fmt=fmt, **({"icc_profile": icc} if icc else {}))
    return submit_job(owner, file, operations, tile_size, **output)


def result_bytes(job) -> bytes:
    with job.result.open("rb") as handle:
        return handle.read()


def result_image(job) -> Image.Image:
    """The job's stored result, decoded."""
    return Image.open(io.BytesIO(result_bytes(job)))
