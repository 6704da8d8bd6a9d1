"""Driving the dashboard in Debian's Chromium: logging in, screenshots, the accessibility scan.

The ``chromium`` fixture (tests/integration/conftest.py) launches the browser once per module.
With IMAGEPIPE_SCREENSHOTS=docs set, ``shoot`` saves the README's screenshots there.
"""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Page, ViewportSize, expect

from imagepipe.processes import BASE_DIR

SHOTS = os.environ.get("IMAGEPIPE_SCREENSHOTS")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
AXE = BASE_DIR / "node_modules" / "axe-core" / "axe.min.js"  # package.json; scripts/bootstrap.sh installs it


def logged_in(chromium, system, username: str, password: str, viewport: ViewportSize = DESKTOP) -> Page:
    context = chromium.new_context(viewport=viewport, accept_downloads=True)
    page = context.new_page()
    page.goto(f"{system.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{system.url}/")
    return page


def shoot(page: Page, name: str, full_page: bool = True) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(exist_ok=True)
        page.screenshot(path=f"{SHOTS}/{name}.png", full_page=full_page)


def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical findings on the page as it stands, one line each."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    return page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
             .filter(v => ["serious", "critical"].includes(v.impact))
             .map(v => `${v.impact} ${v.id}: ${v.help} at ` +
                       v.nodes.map(n => n.target.join(" ")).join(", "))"""
    )
