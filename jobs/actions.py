"""What a user can do to a job, one function per verb: submit, cancel, retry, delete, pause, resume,
prioritise, keep.

The API, the form, the admin and the management commands all call these, so every way in has the
same side effects: the state change and the websocket push. Each writes its change and returns;
the pipeline's processes act on it (the dispatcher tells the workers of a cancellation and
assembles a retried job whose tiles are all in), so no request waits on Kafka or encodes an image.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from imagepipe.core.normalise import KEPT
from imagepipe.core.operations import chain_output_mode

from . import quotas, storage
from .events import push_status
from .models import Job, Tile
from .submission import (
    SubmissionError,
    check_geometry,
    check_message_size,
    check_result_encoding,
    check_tile_count,
    clean_filename,
    parse_operations,
    parse_output,
    parse_priority,
    parse_tile_size,
    whole_number,
)
from .uploads import inspect_upload, kept_profile

SIXTEEN_BIT_NOTE = (
    "the image has 16 bits a sample; every operation here works at 8, so it is reduced to 8 bits "
    "before the first step (grey by (v + 128) // 257, colour to its high byte), and the result has 8"
)


def plan(operations, width, height, mode="RGB", tile_size=None) -> Job:
    """What a job of this chain would make of an image of ``width`` × ``height`` (its stages'
    sizes, its tiles, the result's size), checked as a submission is, nothing stored: the submit
    page shows it before anything is uploaded. Raises SubmissionError."""
    size = (
        whole_number(width, "width must be a whole number"),
        whole_number(height, "height must be a whole number"),
    )
    if min(size) < 1 or size[0] * size[1] > settings.MAX_IMAGE_PIXELS:
        raise SubmissionError(
            f"the image must be at least 1 × 1 and at most {settings.MAX_IMAGE_PIXELS:,} pixels"
        )
    if mode not in KEPT:
        raise SubmissionError(f"mode must be one of {', '.join(KEPT)}")
    steps = parse_operations(operations)
    job = Job(
        operations=[step.to_dict() for step in steps],
        tile_size=parse_tile_size(tile_size),
        width=size[0],
        height=size[1],
        mode=mode,
        output_mode=chain_output_mode(mode, steps),
    )
    check_geometry(job)
    check_tile_count(job)
    return job


def submit(owner, upload, operations, tile_size=None, output_format=None, quality=None, priority=None) -> Job:
    """Create a job from an upload; raises SubmissionError (QuotaExceeded among them) before anything
    is stored.

    ``job.notes`` lists what the submitter should know that did not stop the job (not stored).
    """
    steps = parse_operations(operations)
    size = parse_tile_size(tile_size)
    priority = parse_priority(priority, owner)
    found = inspect_upload(upload)
    result_mode = chain_output_mode(found.mode, steps)
    output_format, quality = parse_output(output_format, quality, result_mode)
    job = Job(
        owner=owner,
        original_name=clean_filename(upload.name),
        operations=[step.to_dict() for step in steps],
        tile_size=size,
        width=found.size[0],
        height=found.size[1],
        mode=found.mode,
        output_mode=result_mode,
        output_format=output_format,
        output_quality=quality,
        priority=priority,
        stored_bytes=upload.size,  # its original, as stored below
    )
    job.icc_profile, job.notes = kept_profile(found.icc_profile, result_mode)
    if found.sixteen_bit:  # told before it starts, not found in the result
        job.notes.append(SIXTEEN_BIT_NOTE)
    check_geometry(job)
    check_tile_count(job)  # before building the tile list, whose size it bounds
    check_result_encoding(job)
    tiles = job.all_tiles()
    job.tiles_total = len(tiles)
    check_message_size(tiles, len(found.mode))
    quotas.check(owner, job)  # before the original is stored
    upload.seek(0)
    try:
        with storage.calls("storing the upload"):
            job.original.save(f"{job.id}{found.extension}", upload, save=False)
    except storage.StorageUnavailable as exc:
        raise SubmissionError("storage is unavailable; nothing was stored: try again later", 503) from exc
    try:
        with transaction.atomic():
            quotas.check(owner, job, lock=True)  # again, one of the owner's submissions at a time
            job.save()
            Tile.objects.bulk_create(Tile.from_spec(job, spec, stage) for stage, spec in tiles)
    except BaseException:
        job.original.delete(save=False)  # no row names it: nothing would ever delete it
        raise
    return job  # queued: the dispatcher sends its tiles as the workers have room


def cancel(job: Job) -> bool:
    """Stop an unfinished job: its page hears at once, the workers as soon as the dispatcher tells
    them (``PendingCancellation``), and they drop its tiles."""
    if not job.cancel():
        return False
    push_status(job)
    return True


def retry(job: Job) -> bool:
    """Put a failed or cancelled job back to work, re-running only the tiles not done (one whose
    tiles are all in is assembled again by the dispatcher)."""
    if not job.reopen():
        return False
    if job.tiles_done < job.tiles_total:
        job.tiles.in_flight(job.stage).requeue()  # the dispatcher sends them again
        job.tiles.filter(state=Tile.State.FAILED).update(  # sent again too, from a clean slate
            state=Tile.State.QUEUED,
            error="",
            worker="",
            offset=None,
            duration_ms=None,
            dispatched_at=None,
            finished_at=None,
        )
    push_status(job)
    return True


def pause(job: Job) -> bool:
    """Send no more of a job's tiles until it is resumed; those in flight finish."""
    if not job.pause():
        return False
    push_status(job)
    return True


def resume(job: Job) -> bool:
    """Let the dispatcher send a paused job's remaining tiles again."""
    if not job.resume():
        return False
    push_status(job)
    return True


def prioritise(job: Job, priority: int) -> None:
    """Set how soon the job's tiles get into the dispatch window (Job.Priority)."""
    Job.objects.filter(pk=job.pk).update(priority=priority)
    job.priority = priority
    push_status(job)


def keep(job: Job, kept: bool) -> None:
    """Keep the job past JOB_RETENTION_DAYS (or let retention delete it again once it is due)."""
    Job.objects.filter(pk=job.pk).update(keep=kept)
    job.keep = kept


def delete(job: Job) -> None:
    """Remove a job (cancelling it first if it still runs); its files go once the row has gone
    (``jobs.cleanup``)."""
    cancel(job)
    with transaction.atomic():
        job.delete()
