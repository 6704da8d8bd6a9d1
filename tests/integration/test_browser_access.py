"""Every page, for everyone: axe-core finds nothing serious or critical on any page of the
dashboard, at a desktop's and a phone's width; and a job can be submitted, watched and downloaded
with the keyboard alone."""

import re

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.core.reference import reference
from tests.images import DATA, photo

from .browser import DESKTOP, PHONE, logged_in, serious_violations
from .conftest import submit, wait_until_finished

pytestmark = pytest.mark.integration


def pages(system, job_id: str) -> dict[str, str]:
    """Every page of the dashboard a person reaches, by name (the job page running and done)."""
    return {
        "history": "/",
        "submit": "/jobs/new/",
        "run again": f"/jobs/new/?from={job_id}",
        "job": f"/jobs/{job_id}/",
        "workers": "/workers/",
        "dead letters": "/dead-letters/",
    }


VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}


def scan(page: Page, name: str, found: dict[str, list[str]]) -> None:
    """axe on the page at each width; at a phone's, the page must also fit: no sideways scrolling."""
    for width, viewport in VIEWPORTS.items():
        page.set_viewport_size(viewport)
        if viewport == PHONE:  # (the mosaic re-lays itself out on the resize event)
            page.wait_for_function(f"document.documentElement.scrollWidth <= {PHONE['width']}")
        found[f"{name}, {width}"] = serious_violations(page)


def test_no_page_has_a_serious_accessibility_finding_at_any_width(chromium, system, api, admin_user):
    job = submit(api, "rocket.jpg", [{"op": "median", "size": 3}], tile_size=128)
    assert wait_until_finished(api, system, job["id"])["status"] == "done"
    found: dict[str, list[str]] = {}
    anonymous = chromium.new_context(viewport=DESKTOP).new_page()
    anonymous.goto(f"{system.url}/accounts/login/")
    scan(anonymous, "login", found)
    for user, password in (("alice", "alice-pass"), ("admin", "password")):
        page = logged_in(chromium, system, user, password)
        for name, path in pages(system, job["id"]).items():
            if name == "dead letters" and user != "admin":
                continue  # staff only
            page.set_viewport_size(DESKTOP)
            page.goto(f"{system.url}{path}")
            page.wait_for_load_state("networkidle")
            scan(page, f"{name} as {user}", found)
    problems = [f"{name}: {problem}" for name, found_there in found.items() for problem in found_there]
    assert problems == [], "\n".join(problems)


def tab_to(page: Page, selector: str, limit: int = 60) -> None:
    """Press Tab until the element matching ``selector`` has the focus, as a keyboard user would."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} is not reachable with Tab")


def test_a_job_is_submitted_watched_and_downloaded_with_the_keyboard_alone(chromium, system, api, tmp_path):
    page = chromium.new_context(viewport=DESKTOP, accept_downloads=True).new_page()
    # Listening from the start: Playwright turns on the interception of file choosers when the
    # first listener comes, without waiting for the browser to confirm, so a listener added just
    # before the key press can miss the chooser that key opens.
    page.on("filechooser", lambda chooser: chooser.set_files(str(DATA / "rocket.jpg")))
    page.goto(f"{system.url}/accounts/login/")
    tab_to(page, "#id_username")
    page.keyboard.type("alice")
    page.keyboard.press("Tab")
    page.keyboard.type("alice-pass")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{system.url}/")

    tab_to(page, 'a[href="/jobs/new/"]')
    page.keyboard.press("Enter")
    expect(page.locator("#add-op option")).not_to_have_count(0)
    tab_to(page, "#id_image")
    page.keyboard.press("Space")
    expect(page.locator("#drop-text")).to_have_text("rocket.jpg")
    tab_to(page, "#chain .remove")  # the suggested first step goes
    page.keyboard.press("Enter")
    tab_to(page, "#add-op")
    page.keyboard.type("grayscale")  # a closed select picks the option typed
    tab_to(page, "#add-step")
    page.keyboard.press("Enter")
    tab_to(page, "#id_tile_size")
    page.keyboard.press("Control+A")
    page.keyboard.type("128")
    expect(page.locator("#grid-info")).to_contain_text("= 20 tiles of 128 px")
    tab_to(page, "#start")
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(r"/jobs/[0-9a-f-]{36}/$"))
    expect(page.locator("#status")).to_have_text("done", timeout=60_000)
    expect(page.locator("#announce")).to_contain_text("done")
    tab_to(page, "#download")
    with page.expect_download() as download:
        page.keyboard.press("Enter")
    download.value.save_as(tmp_path / "result.png")
    expected = reference(photo("rocket.jpg"), [{"op": "grayscale"}])
    assert Image.open(tmp_path / "result.png").tobytes() == expected.tobytes()
