"""Submitting a job: validate, store, record, then publish after commit."""

from __future__ import annotations

from functools import partial

from django.core.files.base import ContentFile
from django.db import transaction

from imagepipe.core.operations import chain_halo, chain_output_mode
from imagepipe.core.tiling import tile_grid

from .dispatch import publish_tiles
from .models import Job, Tile
from .uploads import clean_filename, open_image, parse_operations, parse_tile_size


def submit_job(owner, upload, operations, tile_size=None) -> Job:
    """Create a job from an upload; raises UploadError before anything is stored."""
    steps = parse_operations(operations)
    size = parse_tile_size(tile_size)
    image, extension = open_image(upload)
    halo = chain_halo(steps)
    specs = tile_grid(image.width, image.height, size, halo)

    job = Job(
        owner=owner,
        original_name=clean_filename(upload.name),
        operations=[step.to_dict() for step in steps],
        tile_size=size,
        halo=halo,
        width=image.width,
        height=image.height,
        mode=image.mode,
        output_mode=chain_output_mode(image.mode, steps),
        tiles_total=len(specs),
    )
    upload.seek(0)
    job.original.save(f"{job.id}{extension}", ContentFile(upload.read()), save=False)
    with transaction.atomic():
        job.save()
        Tile.objects.bulk_create(Tile.from_spec(job, spec) for spec in specs)
        transaction.on_commit(partial(publish_tiles, job, image, specs))
    return job
