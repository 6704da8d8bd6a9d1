"""The ASGI application daphne serves: paths it has no answer for are refused, never a 500."""

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator, WebsocketCommunicator

from imagepipe.asgi import application

BROWSER = [(b"host", b"localhost"), (b"origin", b"http://localhost")]


def status_of(url: str) -> int:
    async def get():
        communicator = HttpCommunicator(application, "GET", url, headers=BROWSER)
        await communicator.send_input({"type": "http.request", "body": b""})
        start = await communicator.receive_output(timeout=5)
        await communicator.wait(timeout=5)  # the body may stream: only its status matters here
        return start["status"]

    return async_to_sync(get)()


@pytest.mark.parametrize(
    "url",
    [
        "/static/%2e%2e/imagepipe/settings.py",  # the server hands the app the path decoded: /static/../
        "/static/../../../../etc/passwd",
        "/static/admin/%2e%2e/%2e%2e/templates/admin/base.html",
    ],
)
def test_a_static_path_that_climbs_out_is_not_found(url):
    assert status_of(url) == 404


def test_a_static_file_is_still_served():
    assert status_of("/static/admin/css/base.css") == 200


@pytest.mark.parametrize("path", ["/ws/jobs/not-a-uuid/", "/ws/jobs/", "/ws/elsewhere/", "/"])
def test_a_websocket_to_no_route_is_refused_at_the_handshake(path):
    async def knock():
        communicator = WebsocketCommunicator(application, path, headers=BROWSER)
        connected, _ = await communicator.connect()
        await communicator.wait()
        return connected

    assert async_to_sync(knock)() is False
