"""The websocket's messages: status events and the snapshot a socket opens with."""

import pytest
from django.utils import timezone

from jobs.events import TILE_FIELDS, snapshot, status_event
from jobs.models import Job, Tile
from tests.images import noise

from .factories import make_job

pytestmark = pytest.mark.django_db

# Turned, then a global step: two stages whose tiles land away from where they were cut.
TURNED_TWO_STAGES = [{"op": "rotate", "angle": 90}, {"op": "equalize"}, {"op": "box_blur", "radius": 1}]


def finish(job: Job, tiles, worker: str) -> None:
    """Mark tiles done as the collector would."""
    for tile in tiles:
        Tile.objects.filter(pk=tile.pk).update(state=Tile.State.DONE, worker=worker, attempts=1)
        job.record_tiles_done(1)


def as_dicts(state: dict) -> list[dict]:
    return [dict(zip(state["tile_fields"], row, strict=True)) for row in state["tiles"]]


def test_a_snapshot_holds_the_job_state_and_every_tile_with_its_state(alice):
    job = make_job(alice, noise(64, 48), tile_size=16)  # 4 x 3 tiles
    tiles = list(job.tiles.all())
    Tile.objects.filter(pk__in=[t.pk for t in tiles[5:8]]).update(
        state=Tile.State.SENT, dispatched_at=timezone.now(), attempts=2
    )
    finish(job, tiles[:3], "host-a-worker-1")
    finish(job, tiles[3:5], "host-b-worker-2")
    Tile.objects.filter(pk=tiles[11].pk).update(state=Tile.State.FAILED, worker="host-b-worker-2")

    state = snapshot(job.pk)

    assert state is not None
    assert state["type"] == "snapshot"
    assert {k: state[k] for k in ("status", "stage", "tiles_done", "tiles_total", "error")} == {
        "status": "running",
        "stage": 0,
        "tiles_done": 5,
        "tiles_total": 12,
        "error": "",
    }
    assert state["started_at"] and state["finished_at"] is None
    assert state["timings"].keys() == {"queued", "processing", "assembling"}
    assert state["workers"] == ["host-a-worker-1", "host-b-worker-2"]
    assert state["tile_fields"] == TILE_FIELDS
    rows = as_dicts(state)
    assert [(r["stage"], r["index"]) for r in rows] == [(0, i) for i in range(12)]
    assert [state["tile_states"][r["state"]] for r in rows] == (
        ["done"] * 5 + ["sent"] * 3 + ["queued"] * 3 + ["failed"]
    )
    workers = [None if r["worker"] is None else state["workers"][r["worker"]] for r in rows]
    assert workers == ["host-a-worker-1"] * 3 + ["host-b-worker-2"] * 2 + [None] * 6 + ["host-b-worker-2"]
    assert [r["attempts"] for r in rows[5:8]] == [2, 2, 2]


def test_a_snapshot_places_every_tile_where_its_tile_event_does(alice):
    job = make_job(alice, noise(64, 48), operations=TURNED_TWO_STAGES, tile_size=16)
    finish(job, job.tiles.all(), "host-a-worker-1")
    job.refresh_from_db()

    state = snapshot(job.pk)

    assert state is not None
    events = {(t.stage, t.index): t.event() for t in job.tiles.select_related("job")}
    assert len(state["canvases"]) == 2
    assert {(r["stage"], r["index"]) for r in as_dicts(state)} == events.keys()
    for row in as_dicts(state):
        event = events[row["stage"], row["index"]]
        assert [row["left"], row["top"], row["width"], row["height"]] == event["place"]
        assert list(state["canvases"][row["stage"]]) == event["canvas"]


def test_a_snapshot_costs_two_queries_whatever_the_tile_count(alice, django_assert_num_queries):
    for size in [(32, 32), (320, 320)]:  # 4 tiles, then 400
        job = make_job(alice, noise(*size), tile_size=16)
        finish(job, job.tiles.all(), "host-a-worker-1")
        with django_assert_num_queries(2):
            state = snapshot(job.pk)
            assert state is not None and len(state["tiles"]) == job.tiles_total


def test_a_snapshot_of_a_finished_job_is_its_final_state(alice):
    job = make_job(alice, noise(32, 32), tile_size=16)
    finish(job, job.tiles.all(), "host-a-worker-1")
    job.claim_assembly()
    job.finish("results/x.png", 100)

    state = snapshot(job.pk)

    assert state is not None
    assert (state["status"], state["tiles_done"], len(state["tiles"])) == ("done", 4, 4)
    assert state["finished_at"] == job.finished_at.isoformat()


def test_there_is_no_snapshot_of_a_deleted_job(alice):
    job = make_job(alice, noise(32, 32), tile_size=16)
    job.delete()
    assert snapshot(job.pk) is None


def test_a_status_event_carries_the_counts_a_client_checks_for_gaps(alice):
    job = make_job(alice, noise(32, 32), tile_size=16)
    job.fail("stopped")
    job.started_at = timezone.now()

    assert status_event(job) == {
        "type": "status",
        "status": "failed",
        "error": "stopped",
        "stage": 0,
        "tiles_done": 0,
        "tiles_total": 4,
        "started_at": job.started_at.isoformat(),
        "finished_at": job.finished_at.isoformat(),
        "timings": job.timings(),
        "phase": None,
        "viewer": "",
    }
