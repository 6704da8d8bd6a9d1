"""The job page in Debian's Chromium against the real system: every tile from the start, stage by
stage, the phases, the before/after split, tile details by mouse and keyboard, a phone's width,
and no serious accessibility finding."""

import re

import pytest
from PIL import Image
from playwright.sync_api import expect

from jobs.models import Tile
from tests.core.reference import reference
from tests.images import noise, photo

from .browser import PHONE, logged_in, serious_violations, shoot
from .conftest import submit, two_workers_assigned, wait_for, wait_until_finished

pytestmark = pytest.mark.integration

TWO_STAGES = [{"op": "autocontrast", "cutoff": 1}, {"op": "equalize"}]  # rocket.jpg at 64: 70 tiles each
OKABE_ITO = ["rgb(0, 114, 178)", "rgb(230, 159, 0)"]  # the first two colours, as the browser computes them


@pytest.fixture
def page(chromium, system, api):
    return logged_in(chromium, system, "alice", "alice-pass")


def both_workers(system) -> None:
    """Worker rows come back with their next heartbeat after each test's flush, and the dispatcher
    sends only to partitions it knows are held: wait for both before a test that needs both."""
    wait_for(lambda: two_workers_assigned(system), "both workers' heartbeats", system)


def test_every_tile_shows_from_the_start_and_each_stage_fills_its_own_grid(page, api, system, tmp_path):
    both_workers(system)
    system.stop("dispatcher")  # queued, and nothing sent: the page must show the whole grid waiting
    try:
        job = submit(api, "rocket.jpg", TWO_STAGES, tile_size=64)
        page.goto(f"{system.url}/jobs/{job['id']}/")
        expect(page.locator("#mosaic .tile.queued")).to_have_count(70)
        expect(page.locator("#stage-label")).to_have_text("· stage 1 of 2")
        expect(page.locator("#mosaic-summary")).to_have_text(
            "Stage 1 of 2: 0 done · 0 in flight · 70 queued · 0 failed"
        )
        expect(page.locator("#eta")).to_have_text("waiting for a worker")
        expect(page.locator("#timings")).to_contain_text(re.compile(r"^queued \d+\.\d\d s so far$"))
        assert serious_violations(page) == []
    finally:
        system.start_dispatcher()

    # Stage 2 starts with its own full grid, never a single row of the tiles done so far.
    expect(page.locator("#stage-label")).to_have_text("· stage 2 of 2", timeout=60_000)
    expect(page.locator('#mosaic[data-stage="1"] .tile')).to_have_count(70)
    shoot(page, "job-stage-2")
    expect(page.locator("#status")).to_have_text("done", timeout=60_000)
    expect(page.locator("#announce")).to_have_text("The job is done; the result is ready to download.")
    expect(page.locator('#mosaic[data-stage="1"] .tile.done')).to_have_count(70)
    phases = r"^queued \d+\.\d\d s · processing \d+\.\d\d s · assembling \d+\.\d\d s$"  # none negative
    expect(page.locator("#timings")).to_have_text(re.compile(phases))
    swatches = page.locator("#legend .worker-entry .swatch")
    expect(swatches).to_have_count(2)
    assert swatches.evaluate_all("all => all.map(s => getComputedStyle(s).borderTopColor)") == OKABE_ITO
    assert serious_violations(page) == []

    with page.expect_download() as download:
        page.click("#download")
    assert download.value.suggested_filename == "rocket-imagepipe.png"
    download.value.save_as(tmp_path / "result.png")
    expected = reference(photo("rocket.jpg"), TWO_STAGES)
    assert Image.open(tmp_path / "result.png").tobytes() == expected.tobytes()


def test_the_before_after_split_lies_under_the_handle_with_the_halves_named(page, api, system):
    job = submit(api, "camera.png", [{"op": "invert"}], tile_size=128)
    assert wait_until_finished(api, system, job["id"])["status"] == "done"
    page.goto(f"{system.url}/jobs/{job['id']}/")
    page.wait_for_function(
        "(image => image.complete && image.naturalWidth)(document.getElementById('after'))"
    )
    expect(page.locator("#compare-missing")).to_be_hidden()  # both previews were made with the job
    frame, slider = page.locator("#compare-frame"), page.locator("#slider")
    expect(frame.locator(".tag.left")).to_have_text("Original")
    expect(frame.locator(".tag.right")).to_have_text("Result")
    image = page.locator("#after").bounding_box()
    assert slider.bounding_box()["width"] == pytest.approx(image["width"], abs=1)
    for value in (50, 20, 0, 100):
        slider.fill(str(value))
        split = page.locator("#before-clip").bounding_box()
        handle = image["x"] + 8 + (image["width"] - 16) * value / 100  # the centre of the 16-px thumb
        assert split["x"] + split["width"] == pytest.approx(handle, abs=1)


def test_a_big_job_zooms_in_with_its_original_beside_it(page, api, system, tmp_path):
    image = noise(1280, 800, seed=9)  # over ZOOMABLE_PIXELS: the collector makes its pyramids
    image.save(tmp_path / "wide.png")
    with open(tmp_path / "wide.png", "rb") as handle:
        response = api.post(
            f"{api.base}/api/jobs/", files={"image": handle}, data={"operations": '[{"op": "invert"}]'}
        )
    job = response.json()
    assert wait_until_finished(api, system, job["id"])["status"] == "done"
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url) if "/pyramid/" in request.url else None)
    page.goto(f"{system.url}/jobs/{job['id']}/")
    expect(page.locator("#zoom-frames")).to_be_visible(timeout=30_000)  # once the pyramids are made
    original, result = page.locator("#zoom-original"), page.locator("#zoom-result")
    expect(result).to_have_attribute("data-level", "10")  # fitted, 1280 px in 600: the 640-px level
    result.focus()
    for _ in range(4):
        page.keyboard.press("+")
    expect(result).to_have_attribute("data-level", "11")  # 1:1, the full-size tiles
    expect(original).to_have_attribute("data-level", "11")  # the two move together
    page.keyboard.press("0")
    expect(original).to_have_attribute("data-level", "10")
    top = [url for url in asked if "_files/11/" in url]
    assert any("/pyramid/result_files/11/" in url for url in top)
    assert any("/pyramid/original_files/11/" in url for url in top)
    assert serious_violations(page) == []


def test_a_chain_that_turns_the_image_shows_the_two_side_by_side(page, api, system):
    job = submit(api, "camera.png", [{"op": "rotate", "angle": 90}], tile_size=128)
    assert wait_until_finished(api, system, job["id"])["status"] == "done"
    page.goto(f"{system.url}/jobs/{job['id']}/")
    expect(page.locator(".side-by-side figcaption")).to_have_text(["Original", "Result"])
    expect(page.locator("#slider")).to_have_count(0)


def test_tile_details_by_keyboard_and_mouse(page, api, system):
    job = submit(api, "rocket.jpg", [{"op": "median", "size": 3}], tile_size=128)  # 5 x 4 tiles
    assert wait_until_finished(api, system, job["id"])["status"] == "done"
    page.goto(f"{system.url}/jobs/{job['id']}/")
    expect(page.locator("#mosaic .tile.done")).to_have_count(20)

    page.locator("#mosaic .tile").first.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    expect(page.locator("#mosaic .tile:focus")).to_have_attribute("data-index", "6")  # row 1, column 1
    page.keyboard.press("Enter")
    detail = page.locator("#tile-detail")
    expect(detail).to_be_visible()
    expect(page.locator("#tile-title")).to_have_text("Tile 6")
    expect(detail).to_contain_text(re.compile(r"Workervm-|Worker\S+worker"))
    expect(detail).to_contain_text("Attemptssent 1 time")
    shoot(page, "tile-detail")
    page.click("#tile-close")
    expect(detail).to_be_hidden()
    expect(page.locator("#mosaic .tile:focus")).to_have_attribute("data-index", "6")  # focus goes back

    page.locator("#mosaic .tile").nth(19).click()
    expect(page.locator("#tile-title")).to_have_text("Tile 19")


def test_the_job_page_fits_a_phone(chromium, system, api):
    job = submit(api, "rocket.jpg", [{"op": "grayscale"}], tile_size=64)
    assert wait_until_finished(api, system, job["id"])["status"] == "done"
    page = logged_in(chromium, system, "alice", "alice-pass", viewport=PHONE)
    page.goto(f"{system.url}/jobs/{job['id']}/")
    expect(page.locator("#mosaic .tile.done")).to_have_count(70)
    page.wait_for_function("document.getElementById('after').complete")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    box = page.locator("#mosaic").bounding_box()
    assert box is not None and box["width"] <= PHONE["width"] - 20
    assert serious_violations(page) == []
    shoot(page, "job-phone")


def test_the_job_page_has_the_jobs_timeline_one_lane_per_worker(page, api, system):
    both_workers(system)
    job = submit(api, "rocket.jpg", [{"op": "median", "size": 3}], tile_size=64)  # 70 tiles
    assert wait_until_finished(api, system, job["id"])["status"] == "done"
    page.goto(f"{system.url}/jobs/{job['id']}/")
    lanes = page.locator("#job-timeline g.lane")
    expect(lanes).to_have_count(2)
    spans = page.locator("#job-timeline rect.span")
    expect(spans).to_have_count(70)
    assert set(spans.evaluate_all("all => all.map(s => s.dataset.job)")) == {job["id"]}


def test_a_tile_sent_more_than_once_is_marked_and_said(page, api, system):
    job = submit(api, "rocket.jpg", [{"op": "invert"}], tile_size=128)  # 20 tiles
    assert wait_until_finished(api, system, job["id"])["status"] == "done"
    Tile.objects.filter(job_id=job["id"], index=3).update(attempts=2)  # as recovery's second send leaves it
    page.goto(f"{system.url}/jobs/{job['id']}/")
    retried = page.locator("#mosaic .tile.retried")
    expect(retried).to_have_count(1)
    expect(retried).to_have_attribute("aria-label", re.compile(r"^tile 3: done by \S+, sent 2 times$"))
    expect(page.locator("#mosaic-summary")).to_contain_text("1 sent more than once")


PIXEL = """([x, y]) => {
  const board = document.querySelector("#mosaic canvas");
  const ratio = board.width / board.getBoundingClientRect().width;
  const at = [Math.round(x * ratio), Math.round(y * ratio)];
  const [r, g, b] = board.getContext("2d").getImageData(...at, 1, 1).data;
  return `rgb(${r}, ${g}, ${b})`;
}"""


def test_a_big_mosaic_is_drawn_on_a_canvas_and_works_by_keyboard_and_mouse(page, api, system):
    job = submit(api, "rocket.jpg", [{"op": "invert"}], tile_size=32)  # 20 x 14 = 280 tiles
    assert wait_until_finished(api, system, job["id"])["status"] == "done"
    Tile.objects.filter(job_id=job["id"], index=3).update(attempts=2)
    page.goto(f"{system.url}/jobs/{job['id']}/")
    mosaic = page.locator("#mosaic")
    expect(mosaic).to_have_attribute("data-drawn", "canvas")
    expect(page.locator("#mosaic-summary")).to_have_text(
        "280 done · 0 in flight · 0 queued · 0 failed · 1 sent more than once"
    )
    expect(page.locator("#mosaic .tile")).to_have_count(0)
    size = page.evaluate("document.querySelector('#mosaic canvas').getBoundingClientRect().width") / 20
    # Each done tile is framed in its worker's colour; the one sent twice has its dark corner.
    assert page.evaluate(PIXEL, [size / 2, 0.5]) in OKABE_ITO
    assert page.evaluate(PIXEL, [4 * size - 2.5, 2.5]) == "rgb(29, 36, 48)"
    assert page.evaluate(PIXEL, [4 * size - 2.5, size - 2.5]) != "rgb(29, 36, 48)"

    mosaic.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    expect(page.locator("#announce")).to_have_text(re.compile(r"^tile 21: done by \S+$"))  # row 1, column 1
    page.keyboard.press("Enter")
    expect(page.locator("#tile-detail")).to_be_visible()
    expect(page.locator("#tile-title")).to_have_text("Tile 21")
    page.click("#tile-close")
    expect(mosaic).to_be_focused()  # the keyboard goes back to the mosaic
    page.keyboard.press("End")
    expect(page.locator("#announce")).to_have_text(re.compile(r"^tile 279: done by \S+$"))

    mosaic.click(position={"x": 3.5 * size, "y": 2.5 * size})  # row 2, column 3
    expect(page.locator("#tile-title")).to_have_text("Tile 43")
    assert serious_violations(page) == []
    shoot(page, "job-canvas")
