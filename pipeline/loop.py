"""The one shape of every long-running process of the pipeline: the dispatcher, the collector and
the worker are each a ``Loop`` whose ``step()`` does one round of work.

``run`` calls ``step()`` until the stop flag (``shutdown.StopFlag``) is set, ``idle()`` after a
step that found nothing to do, and ``stop()`` at the end, whatever happened. A step that fails is
never the end of the process: the database away closes its connections, storage away
(``jobs.storage.StorageUnavailable``) is said in one line, anything else is logged with its
traceback, and either way the next step comes after a backoff that doubles up to
``MAX_BACKOFF``. After each step, failed or not, it touches its liveness file (pipeline/liveness.py),
which its container's healthcheck reads. Each loop counts what it did in ``counters`` (a worker's
travel in its heartbeats, a collector's in its log) and logs them when it stops. A loop that
consumes watches its consumer with ``watchdog.WatchedConsumer``.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError, connections

from jobs.storage import StorageUnavailable

from .liveness import Liveness

logger = logging.getLogger(__name__)
MAX_BACKOFF = 5.0


class Loop:
    name = "loop"

    def __init__(self) -> None:
        self.counters: Counter[str] = Counter()
        self.should_stop: Callable[[], bool] = lambda: False
        self.liveness = Liveness(settings.LIVENESS_FILE)

    def start(self) -> None:
        """Before the first step (subscribe, catch up)."""

    def step(self) -> int:
        """One round of work; how much it did (tiles sent, messages handled): 0 for none, and
        ``idle`` then waits for more."""
        raise NotImplementedError

    def idle(self) -> None:
        """Wait for work after a step that found none (a consumer waits in its own poll)."""

    def stop(self) -> None:
        """After the last step: flush, commit, close."""

    def run(self, should_stop: Callable[[], bool]) -> None:
        self.should_stop = should_stop
        self.start()
        backoff = 0.0
        try:
            while not should_stop():
                busy, backoff = self.guarded_step(backoff)
                self.liveness.beat()  # after a failed step too: alive, and trying again
                if backoff:
                    self.pause(backoff)
                elif not busy:
                    self.idle()
        finally:
            self.stop()
            logger.info("%s stopped; counts: %s", self.name, dict(sorted(self.counters.items())))

    def guarded_step(self, backoff: float) -> tuple[int, float]:
        """A step, and the backoff before the next: none after a step that worked."""
        try:
            return self.step(), 0.0
        except (OperationalError, InterfaceError) as exc:
            backoff = longer(backoff)
            self.counters["database_errors"] += 1
            logger.warning(
                "%s: database unavailable (%s); again in %.1f s", self.name, str(exc).strip(), backoff
            )
            connections.close_all()
        except StorageUnavailable as exc:
            backoff = longer(backoff)
            self.counters["storage_errors"] += 1
            logger.warning("%s: waiting for storage (%s); again in %.1f s", self.name, exc, backoff)
        except Exception:  # the broker away, or a bug: never the end of the process
            backoff = longer(backoff)
            self.counters["step_errors"] += 1
            logger.exception("%s: a step failed; again in %.1f s", self.name, backoff)
        return 0, backoff

    def pause(self, seconds: float) -> None:
        """Sleep, waking early to stop."""
        deadline = time.monotonic() + seconds
        while not self.should_stop() and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.2))


def longer(backoff: float) -> float:
    return min(max(0.5, backoff * 2), MAX_BACKOFF)
