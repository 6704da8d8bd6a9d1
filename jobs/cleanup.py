"""A job's files go with its row, however the row goes: deleted by its owner, by retention, or with
the owner (deleting a user cascades to their jobs, each announced by ``pre_delete``). The names are
read before the rows go, the files deleted once the deletion has committed (``jobs.files``)."""

from __future__ import annotations

from . import previews
from .files import delete_on_commit
from .models import Job


def delete_files_with_job(sender: type[Job], instance: Job, **kwargs: object) -> None:
    delete_on_commit(instance.stored_files() + previews.stored(instance))
