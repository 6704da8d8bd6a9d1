"""A job's files go with its row, however the row goes: deleted by its owner, or with the owner
(deleting a user cascades to their jobs, each announced by ``pre_delete``). The names are read
before the rows go, the files deleted once the deletion has committed: a deletion that rolls back
keeps them, and no row ever names a file that is gone."""

from __future__ import annotations

from django.db import transaction

from . import previews, storage
from .models import Job


def delete_files_with_job(sender: type[Job], instance: Job, **kwargs: object) -> None:
    names = instance.stored_files() + previews.stored(instance)
    transaction.on_commit(lambda: storage.discard(names))
