"""History and Workers in a real browser against the real system: filters, rows kept live without a
reload, the workers' table and the timeline of who did which tiles, and no serious accessibility
finding on either page."""

import re

import pytest
from playwright.sync_api import expect

from jobs.models import Tile

from .browser import PHONE, logged_in, serious_violations, shoot
from .conftest import submit, two_workers_assigned, wait_for, wait_until_finished

pytestmark = pytest.mark.integration


def fits(page) -> bool:
    """The page's content is no wider than its column: nothing scrolls sideways but the tables, in
    their own boxes. (The header is base.html's.)"""
    return page.evaluate("(main => main.scrollWidth <= main.clientWidth)(document.querySelector('main'))")


def test_a_job_submitted_elsewhere_appears_in_history_and_finishes_there(api, system, chromium):
    page = logged_in(chromium, system, "alice", "alice-pass")
    expect(page.locator("#history tbody")).to_contain_text("No jobs yet")
    page.evaluate("window.notReloaded = true")
    assert serious_violations(page) == []

    job = submit(api, "rocket.jpg", [{"op": "median", "size": 3}, {"op": "grayscale"}], tile_size=64)
    row = page.locator(f'#history tr[data-job="{job["id"]}"]')
    expect(row).to_contain_text("median → grayscale")
    expect(page.locator("#history tbody tr").first).to_have_attribute("data-job", job["id"])
    expect(row.locator(".status")).to_have_text("done", timeout=60_000)
    expect(row.locator(".tiles")).to_have_text("70/70")
    expect(row.locator(".duration")).to_have_text(re.compile(r"^\d+\.\d s$"))
    expect(row.locator("img")).to_have_attribute("alt", "result of rocket.jpg")
    assert page.evaluate("window.notReloaded") is True
    assert serious_violations(page) == []


def test_staff_filter_history_by_owner_and_operation(api, system, chromium, staff):
    submit(api, "coffee.png", [{"op": "invert"}])
    submit(api, "camera.png", [{"op": "grayscale"}])
    page = logged_in(chromium, system, "staff", "staff-pass")
    expect(page.locator("#history tbody tr[data-job]")).to_have_count(2)

    page.get_by_label("Jobs", exact=True).select_option("mine")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#history tbody")).to_contain_text("No jobs match these filters")
    page.get_by_label("Jobs", exact=True).select_option("all")
    page.get_by_label("Owner").select_option("alice")
    page.get_by_label("Operation").select_option("invert")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#history tbody tr[data-job]")).to_have_count(1)
    expect(page.locator("#history tbody tr[data-job]")).to_contain_text("coffee.png")
    assert serious_violations(page) == []

    page.set_viewport_size(PHONE)
    assert fits(page)
    shoot(page, "history-phone")


def test_the_workers_page_shows_each_workers_tiles_on_the_timeline(api, system, chromium):
    # Worker rows come back with their next heartbeat after each test's flush; the dispatcher
    # sends only to partitions it knows are held, so both must be back for both to get tiles.
    wait_for(lambda: two_workers_assigned(system), "both workers' heartbeats", system)
    job = submit(api, "rocket.jpg", [{"op": "median", "size": 5}, {"op": "grayscale"}], tile_size=64)
    wait_until_finished(api, system, job["id"])
    per_worker = dict(Tile.objects.filter(job=job["id"]).count_by("worker"))
    assert len(per_worker) == 2 and sum(per_worker.values()) == 70

    page = logged_in(chromium, system, "alice", "alice-pass")
    page.goto(f"{system.url}/workers/")
    names = sorted(per_worker)
    expect(page.locator("#workers tbody tr")).to_have_count(2)
    expect(page.locator("#workers tbody tr td:first-child")).to_have_text(names)  # by id
    expect(page.locator("#workers tbody time").first).to_have_text(re.compile(r"^\d+ s ago$"))
    expect(page.locator("#workers th[data-counter]")).to_have_text(
        ["Skipped", "Failed", "Malformed", "Dead-lettered"]
    )
    lanes = page.locator("#timeline g.lane")
    expect(lanes).to_have_count(2)
    for number, name in enumerate(names):
        lane = page.locator(f'#timeline g.lane[data-lane="{name}"]')
        expect(lane.locator("rect.span")).to_have_count(per_worker[name])
        colour = ["#0072B2", "#E69F00"][number]
        expect(lane.locator("rect.span").first).to_have_attribute("fill", colour)
    expect(page.locator("#timeline svg[role=img]").first).to_have_attribute(
        "aria-label",
        re.compile(f"{names[0]} {per_worker[names[0]]} tiles, {names[1]} {per_worker[names[1]]} tiles"),
    )
    expect(page.locator("#timeline rect.bucket")).to_have_count(60)
    assert serious_violations(page) == []
    shoot(page, "workers")

    page.set_viewport_size(PHONE)
    expect(page.locator("#timeline svg").first).to_have_attribute("width", re.compile(r"^3\d\d$"))
    assert fits(page)
