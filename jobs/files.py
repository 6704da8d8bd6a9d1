"""Stored files leave after the rows that name them: deleted once the transaction that let go of
them has committed, so a transaction that rolls back keeps them, and no row ever names a file that
is gone. (A process that dies between the commit and the deletion leaves files behind, never a
row without its file.)"""

from __future__ import annotations

from django.db import transaction

from . import storage


def delete_on_commit(names: list[str]) -> None:
    """Delete the files ``names`` once the transaction under way commits (at once outside one);
    one storage will not delete is logged, and the sweep deletes it later (``storage.discard``)."""
    if names:
        transaction.on_commit(lambda: storage.discard(names))
