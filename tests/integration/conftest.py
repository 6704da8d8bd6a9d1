"""The real system as processes: daphne, the collector and two workers.

They run against the real broker, Redis and the pytest-django test database,
with topics under a fresh prefix so each session starts from empty topics.
Tests that use them need committed data: ``transactional_db``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid

import pytest
import requests
from django.conf import settings
from playwright.sync_api import sync_playwright

from imagepipe.processes import BASE_DIR, start_system
from pipeline.models import Worker
from tests.images import DATA
from tests.topics import delete_topics

from .browser import CHROMIUM_FLAGS

WAIT_SECONDS = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


PIECE_BYTES = 128 * 1024
ZOOMABLE_PIXELS = 1_000_000  # a job this big gets a zoomable view


@pytest.fixture(scope="session")
def system(django_db_setup, django_db_blocker, tmp_path_factory):
    env = {
        "DATABASE_URL": database_url(),
        "CACHE_URL": settings.CACHES["default"]["LOCATION"],  # under xdist, this process's own
        "KAFKA_TOPIC_PREFIX": f"test-{uuid.uuid4().hex[:8]}-",
        "MEDIA_ROOT": str(tmp_path_factory.mktemp("media")),
        "WORKER_HEARTBEAT_SECONDS": "1",
        # The tests' tiles take milliseconds, not the tenths of a second of a 512-pixel tile: a
        # deeper window keeps the workers busy between the dispatcher's looks, and a second of
        # them ahead would be most of a test's job (the scheduling tests need a queue behind it).
        "DISPATCH_TILES_PER_WORKER": "8",
        "DISPATCH_AHEAD_SECONDS": "0.25",
        "KAFKA_SESSION_TIMEOUT_MS": "6000",  # the broker's least: a killed worker's tiles move sooner
        # Short enough for the fault tests to see recovery and liveness within seconds.
        "TILE_DEADLINE_SECONDS": "8",
        "COLLECTOR_SWEEP_SECONDS": "1",
        "WORKER_STALE_AFTER_SECONDS": "3",
        "WORKER_OFFLINE_AFTER_SECONDS": "6",
        "WORKER_MAX_ATTEMPTS": "3",
        # Schemathesis guesses passwords at /api/auth/token/ from 127.0.0.1, where every later
        # test logs in too; tests/logins/test_throttle.py proves the per-address limit.
        "LOGIN_FAILURES_PER_ADDRESS": "1000000",
        "LOG_LEVEL": "INFO",
        # The mosaic on a canvas from 100 tiles, not 2000: a test's job of 280 shows it.
        "MOSAIC_BUTTONS_MAX": "100",
        # Small pieces, so that the browser sends tests/data's images as resumable uploads.
        "UPLOAD_CHUNK_BYTES": str(PIECE_BYTES),
        "PYRAMID_MIN_PIXELS": str(ZOOMABLE_PIXELS),
    }
    log_dir = BASE_DIR / "var" / "log" / "tests" / env["KAFKA_TOPIC_PREFIX"].strip("-")  # one per session
    subprocess.run(
        [sys.executable, "manage.py", "kafka_topics"],
        cwd=BASE_DIR,
        check=True,
        env={**os.environ, **env},
        capture_output=True,
    )
    running = start_system(env, workers=2, port=free_port(), log_dir=log_dir)
    try:
        with django_db_blocker.unblock():
            wait_for(lambda: two_workers_assigned(running), "two workers sharing the partitions", running)
        yield running
    finally:
        running.stop_all()
        delete_topics(env["KAFKA_TOPIC_PREFIX"])


def two_workers_assigned(running) -> bool:
    names = [n for n in running.processes if "worker" in n]
    workers = Worker.objects.filter(id__in=names)
    return len([w for w in workers if w.partitions and w.status == Worker.Status.ONLINE]) == 2


def wait_for(condition, what: str, running, timeout: float = WAIT_SECONDS):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running.check_alive()
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; logs in {running.log_dir}")


class ApiSession(requests.Session):
    base: str  # the server's address, which the tests' URLs start with


def token_session(base: str, username: str, password: str) -> ApiSession:
    """A requests session that presents the user's API token, fetched from ``base``."""
    session = ApiSession()
    token = session.post(f"{base}/api/auth/token/", data={"username": username, "password": password})
    session.headers["Authorization"] = f"Token {token.json()['token']}"
    session.base = base
    return session


@pytest.fixture
def api(system, transactional_db, alice):
    """A requests session authenticated with alice's API token."""
    return token_session(system.url, "alice", "alice-pass")


def submit(api, name, operations, tile_size=None):
    """A job through the API, from one of the committed photographs."""
    with open(DATA / name, "rb") as handle:
        data = {"operations": json.dumps(operations), **({"tile_size": tile_size} if tile_size else {})}
        response = api.post(f"{api.base}/api/jobs/", files={"image": (name, handle)}, data=data)
    assert response.status_code == 201, response.text
    return response.json()


def wait_until_finished(api, system, job_id):
    def finished():
        body = api.get(f"{api.base}/api/jobs/{job_id}/").json()
        return body if body["status"] in ("done", "failed", "cancelled") else None

    return wait_for(finished, f"job {job_id} to finish", system)


def restart_worker(system, name):
    """Bring a stopped or killed worker back, and wait until the two share the partitions again."""
    process = system.start_worker(name)
    joined = Worker.objects.filter(id=name, pid=process.pid).exclude(partitions=[])
    wait_for(joined.exists, f"{name} to rejoin the group", system)
    wait_for(lambda: two_workers_assigned(system), "two workers sharing the partitions", system)


@pytest.fixture
def chromium(launched_chromium, transactional_db):
    """The browser for one test: every page it opened is closed when the test ends, before the
    test database is flushed (a page left open keeps its socket, which reads the tables the flush
    truncates: Postgres then breaks the deadlock by failing the flush)."""
    yield launched_chromium
    for context in launched_chromium.contexts:
        context.close()


@pytest.fixture(scope="module")
def launched_chromium():
    """Debian's Chromium through Playwright (its own browser download can't be used here)."""
    # Playwright's sync API keeps an event loop running in this thread; Django then refuses
    # ORM calls from the test unless told that this loop is not an async context of its own.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
            yield browser
            browser.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
