"""Stored files leave after the rows that name them: deleted once the transaction that let go of
them has committed, so a transaction that rolls back keeps them, and no row ever names a file that
is gone. (A process that dies between the commit and the deletion leaves files behind, never a
row without its file.)"""

from __future__ import annotations

import logging

from django.core.files.storage import default_storage
from django.db import transaction

logger = logging.getLogger(__name__)


def delete_on_commit(names: list[str]) -> None:
    """Delete the files ``names`` once the transaction under way commits (at once outside one)."""
    if names:
        transaction.on_commit(lambda: delete_files(names))


def delete_files(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError as exc:  # the storage away: the file stays behind, and the log says so
            logger.warning("could not delete %s: %s", name, exc)
