"""pipeline/liveness.py: a loop's proof of life after every step, and the healthcheck that reads it."""

import os
import subprocess
import sys
import time

from imagepipe.processes import BASE_DIR
from pipeline.liveness import verdict
from pipeline.loop import Loop


class FailingOnce(Loop):
    """Its one step fails, and asks the loop to stop."""

    def step(self) -> int:
        self.done = True
        raise RuntimeError("the database is away")


def test_a_loop_touches_its_file_after_a_step_even_a_failed_one(settings, tmp_path):
    settings.LIVENESS_FILE = str(tmp_path / "alive")
    loop = FailingOnce()
    loop.done = False
    loop.run(lambda: loop.done)
    assert loop.counters["step_errors"] == 1
    assert verdict(settings.LIVENESS_FILE, 5) is None


def test_a_loop_given_no_file_writes_none(settings, tmp_path):
    settings.LIVENESS_FILE = ""
    loop = FailingOnce()
    loop.done = False
    loop.run(lambda: loop.done)
    assert list(tmp_path.iterdir()) == []


def test_a_process_that_never_stepped_is_not_alive(tmp_path):
    alive = tmp_path / "alive"
    assert verdict(str(alive), 60) == f"no {alive}: the loop has not finished a step yet"


def test_a_process_whose_last_step_is_old_is_not_alive(tmp_path):
    alive = tmp_path / "alive"
    alive.touch()
    os.utime(alive, (time.time() - 90, time.time() - 90))
    assert verdict(str(alive), 60) == "the loop's last step ended 90 s ago (LIVENESS_MAX_AGE_SECONDS 60)"
    assert verdict(str(alive), 120) is None


def test_a_process_with_no_file_configured_cannot_be_called_alive():
    assert verdict("", 60) == "LIVENESS_FILE is not set: this process keeps no proof of life"


def healthcheck(path, max_age) -> subprocess.CompletedProcess:
    env = {**os.environ, "LIVENESS_FILE": str(path), "LIVENESS_MAX_AGE_SECONDS": str(max_age)}
    return subprocess.run(
        [sys.executable, "-m", "pipeline.liveness"],
        cwd=BASE_DIR,
        env={**env, "DJANGO_SETTINGS_MODULE": "imagepipe.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_healthcheck_command_exits_by_the_file(tmp_path):
    alive = tmp_path / "alive"
    alive.touch()
    fresh = healthcheck(alive, 60)
    assert (fresh.returncode, fresh.stdout.strip()) == (0, "alive")
    os.utime(alive, (time.time() - 600, time.time() - 600))
    stale = healthcheck(alive, 60)
    assert stale.returncode == 1 and "(LIVENESS_MAX_AGE_SECONDS 60)" in stale.stderr
