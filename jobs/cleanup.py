"""A job's files go with its row, however the row goes: deleted by its owner, or with the owner
(deleting a user cascades to their jobs, each announced by ``pre_delete``). The names are read
before the rows go, the files deleted once the deletion has committed: a deletion that rolls back
keeps them, and no row ever names a file that is gone."""

from __future__ import annotations

import logging

from django.core.files.storage import default_storage
from django.db import transaction

from . import previews
from .models import Job

logger = logging.getLogger(__name__)


def delete_files_with_job(sender: type[Job], instance: Job, **kwargs: object) -> None:
    names = instance.stored_files() + previews.stored(instance)
    transaction.on_commit(lambda: delete_files(names))


def delete_files(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError as exc:  # the storage away: the file stays behind, and the log says so
            logger.warning("could not delete %s: %s", name, exc)
