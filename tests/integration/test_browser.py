"""The dashboard in a real browser (Debian's Chromium through Playwright) against the real system."""

import json
import re

import pytest
from PIL import Image
from playwright.sync_api import expect

from pipeline.models import Worker
from tests.core.reference import reference
from tests.images import DATA, photo

from .browser import logged_in, shoot
from .conftest import submit

pytestmark = pytest.mark.integration


def test_a_user_submits_a_photo_and_watches_the_mosaic_fill(api, system, chromium, tmp_path):
    page = logged_in(chromium, system, "alice", "alice-pass")
    frames, sockets = [], []

    def watch(socket):
        sockets.append(socket)
        socket.on("framereceived", lambda frame: frames.append(frame))

    page.on("websocket", watch)
    fetched = []
    page.on("request", lambda request: fetched.append(request.url))

    page.goto(f"{system.url}/jobs/new/")
    page.set_input_files("#id_image", str(DATA / "rocket.jpg"))
    page.get_by_role("button", name="Remove gaussian_blur").click()  # drop the default step
    page.select_option("#add-op", "median")
    page.click("#add-step")
    page.locator('#chain li[data-op="median"] input[name="size"]').fill("5")
    page.select_option("#add-op", "grayscale")
    page.click("#add-step")
    page.fill("#id_tile_size", "64")
    expect(page.locator("#grid-info")).to_have_text("640 × 427 px → 10 × 7 = 70 tiles of 64 px")
    shoot(page, "submit")
    page.click("#start")

    expect(page).to_have_url(re.compile(r"/jobs/[0-9a-f-]{36}/$"))
    page.wait_for_selector("#mosaic .tile.done")
    expect(page.locator("#status")).to_have_text("done", timeout=60_000)
    expect(page.locator("#mosaic .tile.done")).to_have_count(70)
    expect(page.locator("#timings")).to_contain_text("assembling")
    # The page asks for a closing snapshot when it hears the job end: wait until it has come.
    while '"type":"snapshot"' not in frames[-1] or '"status":"done"' not in frames[-1]:
        sockets[-1].wait_for_event("framereceived")
    # Everything came through the websocket: a snapshot of the tiles done before it opened,
    # then the rest and the final status as events, then that closing snapshot.
    events = [json.loads(frame) for frame in frames]
    assert events[0]["type"] == "snapshot"
    assert any(e["type"] == "tile" for e in events)
    assert {"type": "status", "status": "done"}.items() <= events[-2].items()
    assert {"type": "snapshot", "status": "done", "tiles_done": 70}.items() <= events[-1].items()
    assert not [url for url in fetched if url.endswith("/tiles/")]  # no catch-up through the API
    expect(page.locator("#count")).to_have_text("70")
    workers_seen = set(
        page.locator("#mosaic .tile.done").evaluate_all("cells => cells.map(c => c.dataset.worker)")
    )
    assert len(workers_seen) == 2
    page.wait_for_function("document.getElementById('after').complete")
    shoot(page, "job-done")

    with page.expect_download() as download:
        page.click("#download")
    download.value.save_as(tmp_path / "result.png")
    expected = reference(photo("rocket.jpg"), [{"op": "median", "size": 5}, {"op": "grayscale"}])
    assert Image.open(tmp_path / "result.png").tobytes() == expected.tobytes()

    page.goto(f"{system.url}/")
    expect(page.locator("#history tbody tr").first).to_contain_text("rocket.jpg")
    expect(page.locator("#history tbody tr").first).to_contain_text("median → grayscale")
    shoot(page, "history")

    page.goto(f"{system.url}/workers/")
    names = [w.id for w in Worker.objects.all() if w.status == Worker.Status.ONLINE]
    expect(page.locator("#workers td.status.online")).to_have_count(len(names))
    assert len(names) >= 2


def test_another_user_cannot_open_the_job_page_or_its_socket(api, system, chromium, bob):
    job = submit(api, "coffee.png", [{"op": "invert"}])
    page = logged_in(chromium, system, "bob", "bob-pass")

    response = page.goto(f"{system.url}/jobs/{job['id']}/")
    assert response is not None and response.status == 404
    opened = page.evaluate(
        """id => new Promise(done => {
             const socket = new WebSocket(`ws://${location.host}/ws/jobs/${id}/`);
             socket.onopen = () => done("opened");
             socket.onclose = () => done("refused");
           })""",
        job["id"],
    )
    assert opened == "refused"
