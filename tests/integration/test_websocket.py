"""Live progress over the real websocket, served by daphne, fed by the real collector."""

import json
import os
import signal

import pytest
from django.test import Client
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.events import done_rows

from .conftest import submit, wait_for, wait_until_finished

pytestmark = pytest.mark.integration


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def open_socket(system, job_id, cookie=""):
    url = system.url.replace("http", "ws") + f"/ws/jobs/{job_id}/"
    headers = {"Origin": system.url, **({"Cookie": cookie} if cookie else {})}
    return connect(url, additional_headers=headers, open_timeout=10)


def test_the_owner_gets_one_event_per_tile_and_others_are_refused(api, system, alice, bob):
    owner, stranger = alice, bob

    # Hold results back so every event comes after the socket is open: the
    # collector stops, the job runs, the collector comes back and catches up.
    system.stop("collector")
    job = submit(api, "camera.png", [{"op": "gaussian_blur", "radius": 1}], tile_size=200)
    assert job["tiles_total"] == 9

    for cookie in (session_cookie(stranger), ""):
        with pytest.raises(InvalidStatus) as refused:
            open_socket(system, job["id"], cookie)
        assert refused.value.response.status_code == 403

    events: list[dict] = []
    with open_socket(system, job["id"], session_cookie(owner)) as socket:
        system.start_collector()
        while not events or events[-1]["type"] != "status" or events[-1]["status"] not in ("done", "failed"):
            events.append(json.loads(socket.recv(timeout=60)))

    assert events[0]["type"] == "snapshot" and len(events[0]["tiles"]) == 9 and done_rows(events[0]) == []
    tiles = [e for e in events if e["type"] == "tile"]
    assert sorted(e["index"] for e in tiles) == list(range(9))
    assert [e["tiles_done"] for e in tiles] == list(range(1, 10))
    assert all(e["tiles_total"] == 9 and e["worker"] for e in tiles)
    assert {"x", "y", "width", "height"} <= set(tiles[0])
    statuses = [e["status"] for e in events if e["type"] == "status"]
    assert statuses == ["running", "assembling", "done"]
    wait_for(
        lambda: api.get(f"{api.base}/api/jobs/{job['id']}/").json()["status"] == "done",
        "the API to agree",
        system,
    )


def follow(socket) -> list[dict]:
    """Every message until the job has ended, and, as the page does, a snapshot if the end shows
    tiles done that no event told of (events are best effort: a push Redis refuses is lost)."""
    messages = [json.loads(socket.recv(timeout=60))]
    while messages[-1]["type"] != "status" or messages[-1]["status"] not in ("done", "failed"):
        messages.append(json.loads(socket.recv(timeout=60)))
    if messages[-1]["tiles_done"] > len(finished_tiles(messages)):
        socket.send(json.dumps({"type": "snapshot"}))
        messages.append(json.loads(socket.recv(timeout=60)))
        while messages[-1]["type"] != "snapshot":
            messages.append(json.loads(socket.recv(timeout=60)))
    return messages


def finished_tiles(messages: list[dict]) -> set[tuple[int, int]]:
    """What a client knows done from snapshots and tile events, deduplicated by (stage, index)."""
    known = {(m["stage"], m["index"]) for m in messages if m["type"] == "tile" and m["state"] == "done"}
    for state in (m for m in messages if m["type"] == "snapshot"):
        known |= {(row[0], row[1]) for row in done_rows(state)}
    return known


def test_a_socket_opened_mid_job_gets_a_snapshot_then_every_later_tile(api, system, alice):
    owner = alice
    job = submit(api, "camera.png", [{"op": "median", "size": 5}], tile_size=32)  # 16 x 16 tiles
    url = f"{api.base}/api/jobs/{job['id']}/"
    wait_for(lambda: api.get(url).json()["tiles_done"] > 0, "the first tiles", system)

    # The collector pauses while the socket opens, so the snapshot is surely taken mid-job.
    collector = system.processes["collector"]
    os.kill(collector.pid, signal.SIGSTOP)
    try:
        socket = open_socket(system, job["id"], session_cookie(owner))
    finally:
        os.kill(collector.pid, signal.SIGCONT)
    with socket:
        messages = follow(socket)

    first = messages[0]
    assert first["type"] == "snapshot" and first["tiles_total"] == 256
    assert 0 < len(done_rows(first)) == first["tiles_done"] < 256 and len(first["tiles"]) == 256
    assert any(m["type"] == "tile" for m in messages)
    assert finished_tiles(messages) == {(0, index) for index in range(256)}
    assert messages[-1]["status"] == "done"


def test_a_socket_opened_on_a_finished_job_gets_its_final_state(api, system, alice):
    owner = alice
    job = submit(api, "coffee.png", [{"op": "invert"}], tile_size=200)  # 3 x 2 tiles
    wait_until_finished(api, system, job["id"])

    with open_socket(system, job["id"], session_cookie(owner)) as socket:
        state = json.loads(socket.recv(timeout=10))
        with pytest.raises(TimeoutError):
            socket.recv(timeout=1)  # and nothing more: the job has ended

    assert (state["type"], state["status"], state["tiles_done"]) == ("snapshot", "done", 6)
    assert finished_tiles([state]) == {(0, index) for index in range(6)}
    assert state["finished_at"] and state["timings"]["assembling"] is not None
