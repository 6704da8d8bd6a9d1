"""A long-running process's proof of life, for its container's healthcheck: the loop touches
``LIVENESS_FILE`` after its steps (pipeline/loop.py), and ``python -m pipeline.liveness`` says
whether it did within ``LIVENESS_MAX_AGE_SECONDS``.

A step that failed (the database away, the broker away) counts: the process is alive and tries
again, and whether the system can serve is readiness, /ready/'s business. A process stuck in one
call, or one that never got to its first step, is not alive. The check reads the settings module
alone, no apps: it runs every few seconds in every container.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from django.conf import settings

# At most one touch a second: a busy collector steps hundreds of times a second.
TOUCH_EVERY = 1.0


class Liveness:
    def __init__(self, path: str) -> None:
        self.path = Path(path) if path else None
        self.touched = -TOUCH_EVERY

    def beat(self) -> None:
        now = time.monotonic()
        if self.path is not None and now - self.touched >= TOUCH_EVERY:
            self.path.touch()
            self.touched = now


def verdict(path: str, max_age: float) -> str | None:
    """Why the process is not alive, or None if it is."""
    if not path:
        return "LIVENESS_FILE is not set: this process keeps no proof of life"
    try:
        age = time.time() - Path(path).stat().st_mtime
    except FileNotFoundError:
        return f"no {path}: the loop has not finished a step yet"
    if age > max_age:
        return f"the loop's last step ended {age:.0f} s ago (LIVENESS_MAX_AGE_SECONDS {max_age:g})"
    return None


def main() -> int:
    problem = verdict(settings.LIVENESS_FILE, settings.LIVENESS_MAX_AGE_SECONDS)
    print(problem or "alive", file=sys.stderr if problem else sys.stdout)
    return 1 if problem else 0


if __name__ == "__main__":
    sys.exit(main())
