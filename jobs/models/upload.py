"""A file arriving in pieces: a resumable upload, for originals larger than one request.

The client declares the file's name and size, then sends it a piece of ``chunk_bytes`` at a time,
each at the offset the upload has reached; each piece is stored as its own file
(``uploads/<id>/<index>``), so a dropped connection loses only the piece in flight and any web
process, on any machine, takes the next one. Once every byte is in, a job is submitted naming the
upload; the pieces are read back in order as one file and stored as the job's original. An upload
not added to for UPLOAD_EXPIRY_HOURS expires, and goes with its pieces (``pipeline.retention``).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class UploadQuerySet(models.QuerySet):
    def visible_to(self, user) -> UploadQuerySet:
        """Staff see every upload; everyone else sees their own."""
        return self if user.is_staff else self.filter(owner=user)

    def expired(self, now: datetime) -> UploadQuerySet:
        return self.filter(updated_at__lt=now - timedelta(hours=settings.UPLOAD_EXPIRY_HOURS))


class Upload(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="uploads")
    filename = models.CharField(max_length=200)
    size = models.BigIntegerField(help_text="bytes, as declared when the upload began")
    chunk_bytes = models.PositiveIntegerField(help_text="every piece's size but the last's")
    received = models.BigIntegerField(default=0, help_text="bytes stored so far, from the start")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now, help_text="the last piece's arrival")

    objects = UploadQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["updated_at"], name="upload_expiry")]

    def __str__(self) -> str:
        return f"{self.filename} ({self.received}/{self.size} bytes)"

    @property
    def complete(self) -> bool:
        return self.received == self.size

    @property
    def expires_at(self) -> datetime:
        return self.updated_at + timedelta(hours=settings.UPLOAD_EXPIRY_HOURS)

    @property
    def pieces(self) -> int:
        return -(-self.size // self.chunk_bytes)

    def piece_name(self, index: int) -> str:
        return f"uploads/{self.pk}/{index:06d}"

    def piece_length(self, index: int) -> int:
        """How long piece ``index`` is: ``chunk_bytes``, but what is left for the last."""
        return min(self.chunk_bytes, self.size - index * self.chunk_bytes)

    def stored_names(self) -> list[str]:
        """The pieces stored so far."""
        return [self.piece_name(index) for index in range(-(-self.received // self.chunk_bytes))]
