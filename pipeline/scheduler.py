"""Who gets the next free places in the dispatch window: the scheduling rule, as plain code.

Higher priority first. Within a priority, the user with the fewest tiles in flight, then that
user's job with the fewest, the oldest first: a small job submitted behind a big one gets the
next free place, and users share the workers whatever the size of their jobs. A user's jobs whose
input the dispatcher can't hold in memory now wait behind their others (decoding a 24 MP image
for every tile would starve the workers); between users, fairness comes first.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Queue:
    """A dispatchable job's waiting tiles, as the scheduler sees it."""

    job: str
    owner: int
    priority: int
    created_at: datetime
    queued: int  # tiles of its current stage waiting to be sent
    in_flight: int  # tiles sent and not yet recorded
    in_memory: bool = True  # its input is decoded, or there is room to decode it


def share(queues: list[Queue], free: int, in_flight_by_owner: dict[int, int] | None = None) -> Counter[str]:
    """How many of ``free`` places each job gets, one place at a time.

    ``in_flight_by_owner`` counts each user's tiles in flight in every job, including jobs that
    have nothing queued now (a user's running tiles count against their share all the same).
    """
    owners = Counter(in_flight_by_owner or {})
    for queue in queues:
        owners.setdefault(queue.owner, 0)
    flying = Counter({q.job: q.in_flight for q in queues})
    left = {q.job: q.queued for q in queues}
    given: Counter[str] = Counter()
    for _ in range(free):
        waiting = [q for q in queues if left[q.job] > 0]
        if not waiting:
            break
        top = max(q.priority for q in waiting)
        pick = min(
            (q for q in waiting if q.priority == top),
            key=lambda q: (owners[q.owner], not q.in_memory, flying[q.job], q.created_at, q.job),
        )
        given[pick.job] += 1
        left[pick.job] -= 1
        owners[pick.owner] += 1
        flying[pick.job] += 1
    return given


def window(
    online_workers: int, per_worker: int, least: int, tile_seconds: float = 0.0, ahead: float = 0.0
) -> int:
    """Tiles in flight at once: ``ahead`` seconds of work for every live worker, at the
    ``tile_seconds`` a tile has lately taken a worker, at least ``per_worker`` each, and ``least``
    before any worker is seen.

    A count alone can't serve both kinds of operation: two 10 ms tiles a worker leave it idle
    while the next are sent, and twenty 300 ms tiles make a job submitted behind them wait 6 s.
    Measured in time, the window follows the work's cost and bounds how long a newcomer waits:
    about ``ahead``. (The dispatcher's ``recent_tile_seconds`` says what a tile costs.)
    """
    if not online_workers:
        return least
    each = max(per_worker, math.ceil(ahead / tile_seconds)) if tile_seconds > 0 else per_worker
    return max(least, online_workers * each)
