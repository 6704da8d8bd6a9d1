"""Where a job's original comes from when it is not in the request: a resumable upload
(``models.Upload``) sent a piece at a time, or an object already in the configured storage, under
IMPORT_PREFIX. Each is checked against the user before a byte is read, and handed to
``actions.submit`` as a file, read from storage as it is inspected and stored."""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath
from typing import IO, cast

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from . import storage
from .models import Upload
from .submission import SubmissionError, clean_filename, whole_number


def original_of(owner, image=None, upload=None, storage_key=None) -> tuple[File | None, Upload | None]:
    """The submission's original: the file in the request (``image``), a complete upload of the
    owner's (``upload``, its id) or an object in storage (``storage_key``), one of them; and the
    upload, to delete once its job is submitted."""
    ways = {"image": image, "upload": upload, "storage_key": storage_key}
    given = [name for name, value in ways.items() if value]
    if len(given) > 1:
        raise SubmissionError(f"give the image one way, not as {' and '.join(given)}")
    if upload:
        try:
            found = Upload.objects.filter(owner=owner, pk=uuid.UUID(str(upload))).first()
        except ValueError:
            found = None
        if found is None:
            raise SubmissionError(f"you have no upload {upload}", status=404)
        return uploaded_file(found), found
    if storage_key:
        return imported_file(owner, storage_key), None
    return image, None


def begin(owner, filename, size) -> Upload:
    """A new upload of ``size`` bytes, refused (SubmissionError) before any is sent if too large
    or if the owner already has UPLOADS_OPEN_MAX under way."""
    size = whole_number(size, "size must be the file's length in bytes, a whole number")
    if size < 1:
        raise SubmissionError("size must be at least 1 byte")
    if size > settings.MAX_UPLOAD_BYTES:
        raise SubmissionError(f"the file is larger than {settings.MAX_UPLOAD_BYTES} bytes", status=413)
    if Upload.objects.filter(owner=owner).count() >= settings.UPLOADS_OPEN_MAX:
        raise SubmissionError(
            f"you have {settings.UPLOADS_OPEN_MAX} uploads under way (UPLOADS_OPEN_MAX): finish one, "
            "submit it or delete it first",
            status=429,
        )
    return Upload.objects.create(
        owner=owner, filename=clean_filename(filename), size=size, chunk_bytes=settings.UPLOAD_CHUNK_BYTES
    )


def append(upload: Upload, offset, body) -> Upload:
    """Store the next piece, read from ``body`` (the request's stream), at ``offset``: where the
    upload has reached (409 otherwise, with nothing stored), and as long as the piece must be."""
    offset = whole_number(offset, "the Upload-Offset header must be a byte offset, a whole number")
    if offset != upload.received:
        raise _offset_conflict(upload, f"this piece is at offset {offset}")
    index = offset // upload.chunk_bytes
    length = upload.piece_length(index)
    data = body.read(length + 1)
    if len(data) != length:
        raise SubmissionError(f"the piece at offset {offset} must be {length} bytes, not {len(data)}")
    with transaction.atomic():
        upload = Upload.objects.select_for_update().get(pk=upload.pk)
        if offset != upload.received:  # another request stored it meanwhile
            raise _offset_conflict(upload, f"this piece is at offset {offset}")
        try:
            storage.save(upload.piece_name(index), data)
        except storage.StorageUnavailable as exc:
            raise SubmissionError(
                "storage is unavailable; the piece was not stored: send it again", 503
            ) from exc
        upload.received = offset + length
        upload.updated_at = timezone.now()
        upload.save(update_fields=["received", "updated_at"])
    return upload


def _offset_conflict(upload: Upload, what: str) -> SubmissionError:
    error = SubmissionError(f"{what}, but the upload has {upload.received} bytes: send from there", 409)
    error.details = {"offset": upload.received}
    return error


def uploaded_file(upload: Upload) -> File:
    """A complete upload's pieces as one file, to submit."""
    if not upload.complete:
        raise SubmissionError(
            f"upload {upload.pk} has {upload.received} of its {upload.size} bytes: send the rest first"
        )
    pieces = range(upload.pieces)
    joined = storage.Joined(
        [upload.piece_name(index) for index in pieces], [upload.piece_length(index) for index in pieces]
    )
    return File(cast(IO[bytes], joined), name=upload.filename)


def imported_file(owner, key) -> File:
    """The object ``key`` in storage, if the owner may import it: under IMPORT_PREFIX/<username>/
    (staff: anywhere under IMPORT_PREFIX), and no larger than MAX_UPLOAD_BYTES."""
    prefix = settings.IMPORT_PREFIX
    if not prefix:
        raise SubmissionError("importing from storage is turned off (IMPORT_PREFIX is empty)", status=403)
    key = str(key)
    path = PurePosixPath(key)
    if path.is_absolute() or any(part in ("", ".", "..") for part in key.split("/")) or "\\" in key:
        raise SubmissionError(f"{key!r} is not a storage key: no leading '/', no '.' or '..' parts")
    allowed = prefix if owner.is_staff else f"{prefix}{owner.username}/"
    if not key.startswith(allowed):
        raise SubmissionError(f"you may import only keys under {allowed}", status=403)
    try:
        source = storage.Stream(key)
        size = source.size
    except FileNotFoundError:
        raise SubmissionError(f"there is no object {key} in storage") from None
    except storage.StorageUnavailable as exc:
        raise SubmissionError("storage is unavailable; nothing was read: try again later", 503) from exc
    if size > settings.MAX_UPLOAD_BYTES:
        source.close()
        raise SubmissionError(f"the object is larger than {settings.MAX_UPLOAD_BYTES} bytes", status=413)
    return File(cast(IO[bytes], source), name=path.name)  # read, seek and tell are all it needs
