"""A worker joins the group, reports in, and leaves cleanly on SIGTERM."""

import os

import pytest

from pipeline.models import Worker

from .conftest import wait_for

pytestmark = pytest.mark.integration


def test_a_worker_stops_cleanly_on_sigterm_and_reports_offline(system, transactional_db):
    process = system.start_worker("extra-worker")
    wait_for(
        lambda: Worker.objects.filter(pk="extra-worker", stopped=False).exists(),
        "the extra worker's first heartbeat",
        system,
    )
    # It runs niced (WORKER_NICE), so the dispatcher and the collector beside it get a core first.
    assert os.getpriority(os.PRIO_PROCESS, process.pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)

    assert system.stop("extra-worker", timeout=30) == 0  # exited by itself, not killed

    worker = wait_for(
        lambda: Worker.objects.filter(pk="extra-worker", stopped=True).first(),
        "the extra worker's goodbye heartbeat",
        system,
    )
    assert worker.status == Worker.Status.OFFLINE
    log = (system.log_dir / "extra-worker.log").read_text()
    assert "worker extra-worker stopped after" in log
    # The two regular workers take the partitions back.
    wait_for(
        lambda: (
            sorted(
                p
                for w in Worker.objects.filter(stopped=False, id__in=list(system.processes))
                for p in w.partitions
            )
            == [0, 1, 2, 3]
        ),
        "the partitions to be reassigned",
        system,
    )
