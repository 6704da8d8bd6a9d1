"""Jobs and their tiles, per-user limits and running totals. State changes are methods; reusable
queries live on QuerySets.

**The lock order** (``LOCK_ORDER``). A transaction that touches more than one of these tables
takes them in this order, one table a statement: a job's tiles, the job, its pending cancellation,
the totals. The collector claims tiles and then counts them on their job and in the totals, the
dispatcher claims tiles and then marks their job sent, a snapshot reads the tiles and then the job,
a cancel ends the job and then writes what the workers are to be told, a finish lets go of the
tiles and then ends the job, retention locks the tiles and then the jobs it deletes. Two
transactions that took two tables in opposite orders could deadlock. ``tests/jobs/test_lock_order.py``
holds each of them to it, and the test suite's flush (one TRUNCATE of every table) takes them in
this order too (``tests/conftest.py``).
"""

from .cancellation import PendingCancellation
from .job import DISPATCH_LOCK, Job, JobQuerySet
from .limits import UserLimits
from .tile import Tile, TileQuerySet
from .totals import Total
from .upload import Upload, UploadQuerySet

__all__ = [
    "DISPATCH_LOCK",
    "LOCK_ORDER",
    "Job",
    "JobQuerySet",
    "PendingCancellation",
    "Tile",
    "TileQuerySet",
    "Total",
    "Upload",
    "UploadQuerySet",
    "UserLimits",
]

LOCK_ORDER = (
    Tile._meta.db_table,
    Job._meta.db_table,
    PendingCancellation._meta.db_table,
    Total._meta.db_table,
)
