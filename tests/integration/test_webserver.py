"""The real web server process refuses bodies too large or too slow while they arrive (imagepipe.webserver).

Raw sockets play the clients a library would not: a body that never ends, a client that stalls.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
import uuid

import pytest
import requests

from imagepipe.processes import BASE_DIR, System
from tests.topics import delete_topics

from .conftest import database_url, free_port, submit, token_session

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
MAX_REQUEST_BYTES = 2 * MIB
TIMEOUT = 2  # REQUEST_BODY_TIMEOUT_SECONDS


@pytest.fixture(scope="module")
def web(django_db_setup, tmp_path_factory):
    """The web process alone, with a small upload limit and a short body timeout."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "KAFKA_TOPIC_PREFIX": f"test-{uuid.uuid4().hex[:8]}-",
        "MEDIA_ROOT": str(tmp_path_factory.mktemp("media")),
        "MAX_UPLOAD_BYTES": str(MIB),
        "MAX_REQUEST_BYTES": str(MAX_REQUEST_BYTES),
        "UPLOAD_CHUNK_BYTES": str(MIB),
        "REQUEST_BODY_TIMEOUT_SECONDS": str(TIMEOUT),
    }
    subprocess.run(
        [sys.executable, "manage.py", "kafka_topics"], cwd=BASE_DIR, env=env, check=True, capture_output=True
    )
    system = System(env=env, log_dir=BASE_DIR / "var" / "log" / "tests" / "webserver", port=free_port())
    try:
        system.start_web()
        yield system
    finally:
        system.stop_all()
        delete_topics(env["KAFKA_TOPIC_PREFIX"])


def connect(web: System) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", web.port))
    sock.settimeout(TIMEOUT * 3)
    return sock


def head(length: int | None = None) -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (
        "POST /api/jobs/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: multipart/form-data; boundary=x\r\n{framing}\r\n\r\n"
    ).encode()


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a timeout fails the test)."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def status_and_json(response: bytes) -> tuple[int, dict]:
    header, _, body = response.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in header.lower()
    return int(header.split(b" ", 2)[1]), json.loads(body)


def test_a_content_length_over_the_limit_is_refused_before_the_body_is_sent(web):
    with connect(web) as sock:
        started = time.monotonic()
        sock.sendall(head(MAX_REQUEST_BYTES + 1))
        response = read_until_closed(sock)
        elapsed = time.monotonic() - started
    status, body = status_and_json(response)
    assert status == 413 and str(MAX_REQUEST_BYTES) in body["error"]
    assert elapsed < 1


def test_a_chunked_body_is_cut_off_when_it_grows_past_the_limit(web):
    chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"x" * 64 * 1024)
    sent = 0
    with connect(web) as sock:
        sock.sendall(head())
        # Keep sending until the server answers: it must answer long before 64 MiB.
        while sent < 64 * MIB and not select.select([sock], [], [], 0)[0]:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 64 * 1024
        response = read_until_closed(sock)
    status, body = status_and_json(response)
    assert status == 413 and str(MAX_REQUEST_BYTES) in body["error"]
    # What the server read plus what the two sockets' buffers held when it stopped reading.
    assert sent < MAX_REQUEST_BYTES + 16 * MIB
    assert requests.get(f"{web.url}/health/", timeout=5).status_code == 200


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param(head(1000) + b"--x\r\n", id="part-of-the-body-then-silence"),
        pytest.param(head(1000)[:60], id="part-of-the-headers-then-silence"),
        pytest.param(head(1000), id="the-headers-then-silence"),
    ],
)
def test_a_request_that_stalls_gets_408_after_the_timeout(web, sent):
    with connect(web) as sock:
        started = time.monotonic()
        sock.sendall(sent)
        response = read_until_closed(sock)
        elapsed = time.monotonic() - started
    status, body = status_and_json(response)
    assert status == 408 and "did not arrive within 2 seconds" in body["error"]
    assert TIMEOUT - 0.5 < elapsed < TIMEOUT + 1.5


def test_a_body_that_trickles_in_is_cut_off_at_the_timeout_too(web):
    """Each byte resets an idle timer; the request's deadline is counted from its first line."""
    with connect(web) as sock:
        started = time.monotonic()
        sock.sendall(head(1000))
        try:
            while time.monotonic() - started < TIMEOUT * 3 and not select.select([sock], [], [], 0.2)[0]:
                sock.sendall(b"x")
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = read_until_closed(sock)
        elapsed = time.monotonic() - started
    assert status_and_json(response)[0] == 408
    assert elapsed < TIMEOUT + 1.5


def test_a_connection_that_sends_nothing_is_closed_after_the_timeout(web):
    with connect(web) as sock:
        started = time.monotonic()
        assert read_until_closed(sock) == b""
        assert TIMEOUT + 0.5 < time.monotonic() - started < TIMEOUT + 2.5  # the idle timeout: 1 s more


def test_a_normal_upload_still_works(web, transactional_db, alice):
    session = token_session(web.url, "alice", "alice-pass")
    assert submit(session, "rocket.jpg", [{"op": "grayscale"}])["status"] == "queued"
