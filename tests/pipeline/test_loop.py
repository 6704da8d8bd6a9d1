"""pipeline.loop.Loop: a step that fails is never the end of the process, and storage away is
waited out like the database."""

import logging

import pytest

from jobs import storage
from pipeline.loop import Loop

pytestmark = pytest.mark.django_db


class Reader(Loop):
    """A loop whose every step reads one stored file, as the dispatcher reads a stage's input."""

    name = "reader"

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name_read, self.read = name, b""

    def step(self) -> int:
        self.read = storage.read(self.name_read)
        return 1


def test_a_step_storage_refuses_backs_off_and_a_step_after_it_answers_works(outage, caplog):
    loop = Reader(storage.save("originals/input.png", b"pixels"))
    outage.begin()
    with caplog.at_level(logging.WARNING):
        assert loop.guarded_step(0.0) == (0, 0.5)
        assert loop.guarded_step(0.5) == (0, 1.0)
    assert loop.counters == {"storage_errors": 2}
    assert "reader: waiting for storage (reading originals/input.png: " in caplog.text
    assert "Traceback" not in caplog.text  # an outage, not a bug
    outage.end()
    assert loop.guarded_step(1.0) == (1, 0.0) and loop.read == b"pixels"
