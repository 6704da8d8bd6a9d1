"""manage.py runworker_kafka as a production worker is deployed: the broker's credentials and the
two signing keys alone."""

import signal
import subprocess
import time

from imagepipe.processes import BASE_DIR, MANAGE
from pipeline.liveness import verdict
from tests.test_production import BROKER, environment

STARTUP = 60  # seconds: settings, the cancellations' read (10 s with no broker), a first step


def test_a_production_worker_runs_with_no_database_redis_or_secret_key(tmp_path):
    """No DATABASE_URL, REDIS_URL, CACHE_URL or SECRET_KEY: the database is Django's dummy backend,
    which raises at any query, yet the worker starts, steps (its liveness file says so, as its
    healthcheck reads it) and stops cleanly. The broker is one nothing listens on: a worker's
    steps go on without one, and reach nothing else."""
    alive = tmp_path / "alive"
    env = environment(
        PRODUCTION="true",
        ALLOWED_HOSTS="imagepipe.example.org",
        LIVENESS_FILE=str(alive),
        TASK_SIGNING_KEY="k" * 48,
        RESULT_SIGNING_KEY="r" * 48,
        **{**BROKER, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"},
    )
    assert not {"DATABASE_URL", "REDIS_URL", "CACHE_URL", "SECRET_KEY"} & set(env)
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [*MANAGE, "runworker_kafka", "--id", "lonely"], cwd=BASE_DIR, env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + STARTUP
        while not alive.exists() and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert verdict(str(alive), 30) is None, log.read_text()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0, log.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    said = log.read_text()
    assert "worker lonely stopped after 0 tiles" in said
    assert "Traceback" not in said and "ImproperlyConfigured" not in said, said
