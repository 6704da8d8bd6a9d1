"""Jobs made through the real submission path (no Kafka: on_commit never fires in `db` tests)."""

from django.core.files.uploadedfile import SimpleUploadedFile

from jobs.services import submit_job
from tests.images import encoded


def upload(image, name="photo.png", fmt="PNG"):
    return SimpleUploadedFile(name, encoded(image, fmt), content_type="image/png")


def make_job(owner, image, operations=None, tile_size=64):
    operations = operations or [{"op": "gaussian_blur", "radius": 2}]
    return submit_job(owner, upload(image), operations, tile_size)
