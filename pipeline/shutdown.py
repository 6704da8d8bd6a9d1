"""A clean stop for long-running commands: SIGTERM or SIGINT sets a flag their loop checks."""

from __future__ import annotations

import signal


class StopFlag:
    def __init__(self) -> None:
        self.stopping = False

    def __call__(self) -> bool:
        return self.stopping

    def set(self, *_args) -> None:
        self.stopping = True

    def install(self) -> StopFlag:
        signal.signal(signal.SIGTERM, self.set)
        signal.signal(signal.SIGINT, self.set)
        return self
