"""Submitting a job: validate, store, record, then publish after commit."""

from __future__ import annotations

from functools import partial

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction

from imagepipe.core.normalise import output_profile
from imagepipe.core.operations import chain_output_mode
from imagepipe.core.pipeline import leading_table

from .dispatch import publish_stage
from .models import Job, Tile
from .uploads import UploadError, clean_filename, open_image, parse_operations, parse_output, parse_tile_size


def submit_job(owner, upload, operations, tile_size=None, output_format=None, quality=None) -> Job:
    """Create a job from an upload; raises UploadError before anything is stored."""
    steps = parse_operations(operations)
    size = parse_tile_size(tile_size)
    image, extension = open_image(upload)
    result_mode = chain_output_mode(image.mode, steps)
    output_format, quality = parse_output(output_format, quality, result_mode)
    job = Job(
        owner=owner,
        original_name=clean_filename(upload.name),
        operations=[step.to_dict() for step in steps],
        tile_size=size,
        width=image.width,
        height=image.height,
        mode=image.mode,
        output_mode=result_mode,
        output_format=output_format,
        output_quality=quality,
        icc_profile=output_profile(image.info.get("icc_profile"), result_mode) or b"",
    )
    tiles = job.all_tiles()
    job.tiles_total = len(tiles)
    check_message_size(tiles, len(image.mode))
    upload.seek(0)
    job.original.save(f"{job.id}{extension}", ContentFile(upload.read()), save=False)
    with transaction.atomic():
        job.save()
        Tile.objects.bulk_create(Tile.from_spec(job, spec, stage) for stage, spec in tiles)
        table = leading_table(job.stages[0], image)
        transaction.on_commit(partial(publish_stage, job, image, 0, table))
    return job


def check_message_size(tiles, bands: int) -> None:
    """Refuse a chain whose halo makes a padded tile larger than a Kafka message may be."""
    largest = max(spec.padded.width * spec.padded.height for _, spec in tiles) * bands
    if largest > settings.KAFKA_MAX_MESSAGE_BYTES:
        raise UploadError(
            f"with this chain's halo a tile would be {largest} bytes, over the "
            f"{settings.KAFKA_MAX_MESSAGE_BYTES}-byte message limit; choose a smaller tile_size"
        )
