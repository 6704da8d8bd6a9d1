"""How the suite splits, wired in by tests/conftest.py.

* ``kafka``: the test needs the broker. Added here to every integration test and every test that
  uses a broker fixture, so ``scripts/test.sh --fast`` (``-m "not kafka"``) runs with no broker.
* ``exclusive``: the test restarts a service every other test shares (the broker, Postgres);
  ``scripts/test.sh`` runs these alone, after the parallel run.

Under pytest-xdist each worker process has its own test database (pytest-django), topic prefix
(the fixtures) and, from here, its own Redis cache database: a session flushes its cache.
"""

from __future__ import annotations

import os
import re
from typing import cast

import pytest

BROKER_FIXTURES = {"kafka_prefix", "kafka_topics", "system"}


def mark_broker_tests(items: list[pytest.Item]) -> None:
    for item in items:
        # Every item collected here is a test function, which is what has fixture names.
        test = cast(pytest.Function, item)
        if item.get_closest_marker("integration") or BROKER_FIXTURES & set(test.fixturenames):
            item.add_marker(pytest.mark.kafka)


def own_cache_database(settings) -> None:
    """gw0, gw1 … use the cache database after the configured one, then the next, and so on."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return
    cache = settings.CACHES["default"]
    match = re.fullmatch(r"(redis://[^/]+)/(\d+)", cache["LOCATION"])
    if match is None:
        raise pytest.UsageError(f"can't give each xdist worker its own cache database in {cache['LOCATION']}")
    cache["LOCATION"] = f"{match[1]}/{int(match[2]) + 1 + int(worker[2:])}"
