"""The job websocket consumer on the real Redis channel layer: snapshot, re-sync, bursts.

Committed data (transaction=True): Channels closes the connection of an open transaction
around each of the consumer's database calls.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.test import Client

from jobs.consumers import SNAPSHOT_REQUEST, JobConsumer
from jobs.events import push, status_event
from jobs.models import Job, Tile
from tests.events import done_rows
from tests.images import noise

from .factories import make_job as submitted_job

pytestmark = pytest.mark.django_db(transaction=True)

TERMINAL = {"done", "failed", "cancelled"}


class Page:
    """What the job page does with the socket: apply snapshots and tiles, re-sync on a gap."""

    def __init__(self, communicator: WebsocketCommunicator):
        self.communicator = communicator
        self.tiles: set[tuple[int, int]] = set()
        self.status: str | None = None
        self.received: Counter[str] = Counter()
        self.asked = False

    async def read(self, timeout: float = 2) -> bool:
        """Apply the next message; False once none comes within ``timeout``."""
        if await self.communicator.receive_nothing(timeout):
            return False  # (a receive that timed out would cancel the consumer)
        message = await self.communicator.receive_json_from()
        self.received[message["type"]] += 1
        if message["type"] == "snapshot":
            self.tiles |= {(row[0], row[1]) for row in done_rows(message)}
            self.asked = False
        elif message["type"] == "tile" and message["state"] == "done":
            self.tiles.add((message["stage"], message["index"]))
        if message["type"] in ("snapshot", "status"):
            self.status = message["status"]
        ended = message["type"] == "status" and self.status in TERMINAL
        if (message["tiles_done"] > len(self.tiles) or ended) and not self.asked:
            await self.communicator.send_json_to(SNAPSHOT_REQUEST)
            self.asked = True
        return True

    async def read_all(self) -> None:
        """Read until nothing more comes for a while."""
        while await self.read():
            pass

    async def read_until_final(self, timeout: float = 60) -> None:
        """Read until the job's final status and the snapshot it asks for have come."""
        while not (self.status in TERMINAL and not self.asked):
            assert await self.read(timeout), (
                f"nothing for {timeout} s; received {dict(self.received)}{self.died()}"
            )

    def died(self) -> str:
        """Why the consumer ended, if it has: a communicator never says so on its own."""
        future = self.communicator.future
        if not future.done() or future.cancelled():
            return ""
        return f"; the consumer ended: {future.exception()!r}"


def socket(job: Job, user=None) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(JobConsumer.as_asgi(), f"/ws/jobs/{job.pk}/")
    # What AuthMiddlewareStack and URLRouter add to a scope: keys the test scope's type lacks.
    communicator.scope["user"] = user or job.owner  # type: ignore[typeddict-unknown-key]
    communicator.scope["url_route"] = {"kwargs": {"job_id": job.pk}}  # type: ignore[typeddict-unknown-key]
    return communicator


def make_job(owner, image, **options) -> Job:
    """A job no dispatcher sends (paused): these tests are about the socket, and a live system in
    the same test database would otherwise process it and push events of its own."""
    with transaction.atomic():  # paused as it is committed: a dispatcher woken by it sees it paused
        job = submitted_job(owner, image, **options)
        Job.objects.filter(pk=job.pk).update(status=Job.Status.PAUSED)
    job.status = Job.Status.PAUSED
    return job


@pytest.fixture
def big_job(alice) -> Job:
    return make_job(alice, noise(800, 640), tile_size=16)  # 50 x 40 = 2,000 tiles


def finish_every_tile(job: Job) -> list[dict]:
    """Mark every tile done, as the collector would, and return its events in order."""
    job.tiles.update(state=Tile.State.DONE, worker="host-a-worker-1", attempts=1)
    events = []
    for done, tile in enumerate(job.tiles.all(), start=1):
        job.tiles_done = done
        tile.job = job
        events.append(tile.event())
    Job.objects.filter(pk=job.pk).update(tiles_done=job.tiles_total, status=Job.Status.DONE)
    job.refresh_from_db()
    return events


def burst(job: Job, events: list[dict]) -> None:
    """Push every event from another thread, as the collector does, while this one waits.

    Called from the test's coroutine, the wait blocks the event loop the consumer runs on:
    a web process too busy to read for as long as the burst lasts.
    """

    def push_all() -> None:
        for event in events:
            push(job, event)

    sender = threading.Thread(target=push_all)
    sender.start()
    sender.join()


async def connected(job: Job, user=None) -> Page:
    """An open socket on ``job`` and the page reading it, past the snapshot sent on connect."""
    communicator = socket(job, user)
    accepted, _ = await communicator.connect()
    assert accepted
    page = Page(communicator)
    assert await page.read() and page.received == {"snapshot": 1}
    return page


def test_a_stalled_socket_receives_a_burst_of_thousands_of_events_whole(big_job):
    async def conversation() -> tuple[Page, int]:
        page = await connected(big_job)
        events = await database_sync_to_async(finish_every_tile)(big_job)
        burst(big_job, [*events, status_event(big_job)])
        await page.read_until_final()
        await page.communicator.disconnect()
        return page, len(events)

    page, sent = async_to_sync(conversation)()
    assert sent == big_job.tiles_total == 2000
    assert page.received["tile"] == sent
    assert page.tiles == set(big_job.tiles.values_list("stage", "index"))
    assert page.status == "done"


def test_a_socket_that_lost_events_to_a_full_queue_re_syncs_to_the_true_state(big_job, settings):
    config = settings.CHANNEL_LAYERS["default"]
    settings.CHANNEL_LAYERS = {"default": {**config, "CONFIG": {**config["CONFIG"], "capacity": 100}}}

    async def conversation() -> Page:
        page = await connected(big_job)
        events = await database_sync_to_async(finish_every_tile)(big_job)
        burst(big_job, events)
        await page.read_all()  # all that will come: the rest were dropped
        assert 0 < page.received["tile"] < len(events)
        burst(big_job, [status_event(big_job)])  # the collector's "done", once assembly is over
        await page.read_until_final()
        await page.communicator.disconnect()
        return page

    page = async_to_sync(conversation)()
    assert page.received["snapshot"] == 2
    assert page.tiles == set(big_job.tiles.values_list("stage", "index"))
    assert page.status == "done"


def test_a_snapshot_request_is_answered_and_anything_else_ignored(alice):
    job = make_job(alice, noise(64, 64), tile_size=32)

    async def conversation() -> dict:
        page = await connected(job)
        for junk in ["not json", "[" * 5000, '{"type": "tile"}', '"snapshot"']:
            await page.communicator.send_to(text_data=junk)
        await page.communicator.send_to(bytes_data=b"\xff")
        await page.communicator.send_json_to(SNAPSHOT_REQUEST)
        answer = await page.communicator.receive_json_from(timeout=3)
        assert await page.communicator.receive_nothing()
        await page.communicator.disconnect()
        return answer

    answer = async_to_sync(conversation)()
    assert answer["type"] == "snapshot" and answer["tiles_total"] == 4


def test_a_stranger_is_refused_before_any_snapshot(alice, bob):
    job = make_job(alice, noise(64, 64), tile_size=32)

    async def conversation() -> bool:
        communicator = socket(job, bob)
        accepted, _ = await communicator.connect()
        # The consumer is ended here, not left for asyncio.run to cancel as it closes the loop:
        # once, cancelling its channel-layer receive there hung the test process for good.
        await communicator.disconnect()
        return accepted

    assert not async_to_sync(conversation)()


def closed_when(job: Job, user, change, settings, application=None, headers=()) -> dict:
    """What the socket of ``user`` on ``job`` gets after ``change()`` is made while it is open."""
    settings.WEBSOCKET_ACCESS_CHECK_SECONDS = 0.2

    async def conversation() -> dict:
        if application is None:
            page = await connected(job, user)
        else:
            communicator = WebsocketCommunicator(application, f"/ws/jobs/{job.pk}/", headers=list(headers))
            assert (await communicator.connect())[0]
            page = Page(communicator)
            assert await page.read() and page.received == {"snapshot": 1}
        await database_sync_to_async(change)()
        closed = await page.communicator.receive_output(timeout=5)  # within a check or two
        await page.communicator.wait()
        return closed

    return async_to_sync(conversation)()


def test_a_socket_whose_user_is_deactivated_is_closed(alice, settings):
    job = make_job(alice, noise(64, 64), tile_size=32)
    deactivate = lambda: type(alice).objects.filter(pk=alice.pk).update(is_active=False)  # noqa: E731
    assert closed_when(job, alice, deactivate, settings) == {"type": "websocket.close", "code": 4403}


def test_a_socket_whose_user_is_deleted_is_closed(staff, settings):
    job = make_job(staff, noise(64, 64), tile_size=32)
    closed = closed_when(job, staff, lambda: type(staff).objects.filter(pk=staff.pk).delete(), settings)
    assert closed == {"type": "websocket.close", "code": 4403}


def test_a_staff_socket_on_someone_elses_job_is_closed_once_no_longer_staff(alice, staff, settings):
    job = make_job(alice, noise(64, 64), tile_size=32)
    demote = lambda: type(staff).objects.filter(pk=staff.pk).update(is_staff=False)  # noqa: E731
    assert closed_when(job, staff, demote, settings) == {"type": "websocket.close", "code": 4403}


def test_a_socket_on_a_deleted_job_is_closed_as_gone(alice, settings):
    job = make_job(alice, noise(64, 64), tile_size=32)
    closed = closed_when(job, alice, lambda: Job.objects.filter(pk=job.pk).delete(), settings)
    assert closed == {"type": "websocket.close", "code": 4404}


def test_a_socket_whose_session_logged_out_is_closed(alice, settings):
    from imagepipe.asgi import application  # the real stack: origin check, session and auth middleware

    job = make_job(alice, noise(64, 64), tile_size=32)
    browser = Client()
    browser.force_login(alice)
    cookie = f"sessionid={browser.cookies['sessionid'].value}".encode()
    headers = [(b"host", b"localhost"), (b"origin", b"http://localhost"), (b"cookie", cookie)]
    closed = closed_when(job, alice, browser.logout, settings, application, headers)
    assert closed == {"type": "websocket.close", "code": 4403}


def test_a_socket_whose_user_keeps_access_stays_open_across_checks(alice, settings):
    settings.WEBSOCKET_ACCESS_CHECK_SECONDS = 0.1
    job = make_job(alice, noise(64, 64), tile_size=32)

    async def conversation() -> dict:
        page = await connected(job)
        assert await page.communicator.receive_nothing(0.6)  # several checks: nothing, no close
        burst(job, [status_event(job)])
        event = await page.communicator.receive_json_from(timeout=3)
        await page.communicator.disconnect()
        return event

    assert async_to_sync(conversation)()["type"] == "status"
