"""A job's files go with its row, however the row goes: deleted by its owner, by retention, or with
the owner (deleting a user cascades to their jobs, each announced by ``pre_delete``). The names the
rows hold are read before the rows go, the files deleted once the deletion has committed: a
deletion that rolls back keeps them, and no row ever names a file that is gone."""

from __future__ import annotations

from django.db import transaction

from . import previews, storage
from .models import Job, Upload


def delete_files_with_job(sender: type[Job], instance: Job, **kwargs: object) -> None:
    names, job_id = instance.stored_files(), instance.pk
    # The previews are listed once the deletion has committed: one the pipeline stores later finds
    # no row, and deletes itself (previews.store).
    transaction.on_commit(lambda: storage.discard(names + previews.stored_names(job_id)))


def delete_pieces_with_upload(sender: type[Upload], instance: Upload, **kwargs: object) -> None:
    names = instance.stored_names()
    transaction.on_commit(lambda: storage.discard(names))
