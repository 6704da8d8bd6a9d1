"""Live progress over the real websocket, served by daphne, fed by the real collector."""

import json

import pytest
from django.test import Client
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.images import DATA

from .conftest import wait_for

pytestmark = pytest.mark.integration


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def open_socket(system, job_id, cookie=""):
    url = system.url.replace("http", "ws") + f"/ws/jobs/{job_id}/"
    headers = {"Origin": system.url, **({"Cookie": cookie} if cookie else {})}
    return connect(url, additional_headers=headers, open_timeout=10)


def test_the_owner_gets_one_event_per_tile_and_others_are_refused(api, system, django_user_model):
    owner = django_user_model.objects.get(username="alice")
    stranger = django_user_model.objects.create_user("mallory", password="mallory-pass")

    # Hold results back so every event comes after the socket is open: the
    # collector stops, the job runs, the collector comes back and catches up.
    system.stop("collector")
    with open(DATA / "camera.png", "rb") as handle:
        job = api.post(
            f"{api.base}/api/jobs/",
            files={"image": handle},
            data={
                "operations": json.dumps([{"op": "gaussian_blur", "radius": 1}]),
                "tile_size": 200,
            },
        ).json()
    assert job["tiles_total"] == 9

    for cookie in (session_cookie(stranger), ""):
        with pytest.raises(InvalidStatus) as refused:
            open_socket(system, job["id"], cookie)
        assert refused.value.response.status_code == 403

    events = []
    with open_socket(system, job["id"], session_cookie(owner)) as socket:
        system.start_collector()
        while not events or events[-1].get("status") not in ("done", "failed"):
            events.append(json.loads(socket.recv(timeout=60)))

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
