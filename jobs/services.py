"""Submitting a job: validate, store, record, then publish after commit."""

from __future__ import annotations

import logging
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

logger = logging.getLogger(__name__)


def submit_job(owner, upload, operations, tile_size=None, output_format=None, quality=None) -> Job:
    """Create a job from an upload; raises UploadError before anything is stored.

    ``job.notes`` lists what the submitter should know that did not stop the job (not stored).
    """
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
    )
    job.icc_profile, job.notes = kept_profile(image.info.get("icc_profile"), result_mode)
    check_tile_count(job)  # before building the tile list, whose size it bounds
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


def kept_profile(profile: bytes | None, mode: str) -> tuple[bytes, list[str]]:
    """The ICC profile the result will carry, and a note for the submitter if one was dropped.

    The profile is kept in the job row and written into the result; a colour profile is a few
    KB, so one past MAX_ICC_PROFILE_BYTES is dropped: the job runs, its result has no profile.
    """
    profile = output_profile(profile, mode)
    if profile is None or len(profile) <= settings.MAX_ICC_PROFILE_BYTES:
        return profile or b"", []
    note = (
        f"the image's {len(profile)}-byte ICC profile is over the "
        f"{settings.MAX_ICC_PROFILE_BYTES}-byte limit; the result is written without it"
    )
    logger.warning("dropped an ICC profile: %s", note)
    return b"", [note]


def check_tile_count(job: Job) -> None:
    """Refuse a job with more tiles than MAX_TILES_PER_JOB, naming the smallest tile size that fits."""
    count, limit = job.tile_count(), settings.MAX_TILES_PER_JOB
    if count <= limit:
        return
    # Fewer tiles for every larger size, so the first size that fits is the smallest.
    sizes = range(job.tile_size + 1, settings.TILE_SIZE_MAX + 1)
    fitting = next((size for size in sizes if job.tile_count(size) <= limit), None)
    advice = f"A tile_size of {fitting} or more fits" if fitting else "No tile_size fits: use a smaller image"
    raise UploadError(f"this job would make {count} tiles; the limit is {limit}. {advice}")


def check_message_size(tiles, bands: int) -> None:
    """Refuse a chain whose halo makes a padded tile larger than a Kafka message may be."""
    largest = max(spec.padded.width * spec.padded.height for _, spec in tiles) * bands
    if largest > settings.KAFKA_MAX_MESSAGE_BYTES:
        raise UploadError(
            f"with this chain's halo a tile would be {largest} bytes, over the "
            f"{settings.KAFKA_MAX_MESSAGE_BYTES}-byte message limit; choose a smaller tile_size"
        )
