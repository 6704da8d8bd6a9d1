"""A job of MAX_TILES_PER_JOB tiles through the real system, then its pages in Debian's Chromium.

A 2048 × 2048 grey image at 16-pixel tiles is 16,384 tiles (what a 4-gigapixel image is at 512):
the job runs on ``--workers`` workers, then the bench times, as a user would see them, the job
page until its mosaic has every tile (the websocket's snapshot in and applied), the snapshot's
size, History with the job on it, the admin's page of the job, and the tile API
(``GET /api/jobs/{id}/tiles/``, not paginated).

    .venv/bin/python -m bench.many_tiles [--side 2048 --tile-size 16] [--keep | --job ID]

``--keep`` leaves the job in its database (``imagepipe_tiles``) and prints its id; ``--job ID``
then times only the pages of that job, with no new job run (what a change to a page needs).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import time
import uuid

import django
from PIL import Image
from playwright.sync_api import sync_playwright

from bench.e2e import bench_session, cleanup, until_ended, use_private_database, wait_for_workers
from bench.photo import photo_like
from imagepipe.processes import BASE_DIR, MANAGE, start_system

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# Each socket's messages, timed from the page's start: the first is the snapshot.
WATCH_SOCKETS = """
window.__messages = [];
const Native = window.WebSocket;
window.WebSocket = function (...args) {
  const socket = new Native(...args);
  socket.addEventListener("message", m => {
    const entry = {at: performance.now(), bytes: m.data.length};
    window.__messages.push(entry);
    setTimeout(() => requestAnimationFrame(() => { entry.applied = performance.now(); }), 0);
  });
  return socket;
};
Object.assign(window.WebSocket, Native);
"""


def timed_page(page, url: str, ready: str) -> float:
    """Seconds from asking for ``url`` until ``ready`` (a JS expression) holds."""
    started = time.perf_counter()
    page.goto(url)
    page.wait_for_function(ready, timeout=120_000)
    return time.perf_counter() - started


def measure_pages(system, job: dict) -> dict:
    total = job["tiles_total"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS)
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.add_init_script(WATCH_SOCKETS)
        page.goto(f"{system.url}/accounts/login/")
        page.fill("#id_username", "bench")
        page.fill("#id_password", "bench-pass")
        page.click("button[type=submit]")
        page.wait_for_url(f"{system.url}/")
        job_page = timed_page(
            page,
            f"{system.url}/jobs/{job['id']}/",
            "window.__messages.length && window.__messages[0].applied !== undefined",
        )
        first = page.evaluate("window.__messages[0]")
        shown = page.evaluate("document.querySelector('#count').textContent")
        listed = f"document.body.innerText.includes('{job['original_name']}')"
        history = timed_page(page, f"{system.url}/", listed)
        admin = timed_page(
            page, f"{system.url}/admin/jobs/job/{job['id']}/change/", "document.readyState === 'complete'"
        )
        browser.close()
    return {
        "job page until the mosaic is drawn, s": round(job_page, 2),
        "snapshot in after, s": round(first["at"] / 1000, 2),
        "snapshot applied after, s": round(first["applied"] / 1000, 2),
        "snapshot KB": round(first["bytes"] / 1024),
        "tiles shown": f"{shown}/{total}",
        "History, s": round(history, 2),
        "admin job page, s": round(admin, 2),
    }


def run_job(system, api, args, image: io.BytesIO) -> tuple[str, dict]:
    """One job of ``image`` at ``args.tile_size``, run to its end and its result checked."""
    wait_for_workers(system, api, args.workers)
    started = time.perf_counter()
    response = api.post(
        f"{system.url}/api/jobs/",
        files={"image": ("tiles.png", image.getvalue())},
        data={"operations": json.dumps([{"op": "invert"}]), "tile_size": str(args.tile_size)},
        timeout=300,
    )
    response.raise_for_status()
    job = until_ended(system, api, response.json(), 1)
    figures: dict = {"tiles": job["tiles_total"], "job, s": round(time.perf_counter() - started, 1)}
    if job["status"] != "done":
        raise RuntimeError(f"job {job['id']} {job['status']}: {job['error']}")
    stored = api.get(f"{system.url}/api/jobs/{job['id']}/result/", timeout=60)
    result = Image.open(io.BytesIO(stored.content))
    source = Image.open(image)
    figures["result identical"] = result.tobytes() == bytes(255 - v for v in source.tobytes())
    return job["id"], figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=2048)
    parser.add_argument("--tile-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8093)
    parser.add_argument("--keep", action="store_true", help="leave the job in place, for --job")
    parser.add_argument("--job", help="time the pages of this job, kept by --keep; run none")
    args = parser.parse_args()
    env = {
        "KAFKA_TOPIC_PREFIX": f"tiles-{uuid.uuid4().hex[:8]}-",
        "DJANGO_SETTINGS_MODULE": "imagepipe.settings",
        "WORKER_HEARTBEAT_SECONDS": "1",
    }
    os.environ.update(env)
    env["DATABASE_URL"] = use_private_database("imagepipe_tiles")
    django.setup()
    demo = "ensure_demo_user --username bench --password bench-pass --staff"
    subprocess.run([*MANAGE, *demo.split()], cwd=BASE_DIR, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*MANAGE, "kafka_topics"], cwd=BASE_DIR, check=True, stdout=subprocess.DEVNULL)
    image = io.BytesIO()
    photo_like(args.side, args.side).convert("L").save(image, "PNG")
    logs = BASE_DIR / "var" / "log" / "bench"
    system = start_system(env=env, workers=args.workers, port=args.port, log_dir=logs)
    job_id = None
    try:
        api = bench_session(system)
        if args.job:
            job = api.get(f"{system.url}/api/jobs/{args.job}/", timeout=60).json()
            figures: dict = {"tiles": job["tiles_total"]}
        else:
            job_id, figures = run_job(system, api, args, image)
            job = api.get(f"{system.url}/api/jobs/{job_id}/", timeout=60).json()
            asked = time.perf_counter()
            tiles = api.get(f"{system.url}/api/jobs/{job_id}/tiles/", timeout=120)
            figures["tile API, s"] = round(time.perf_counter() - asked, 2)
            figures["tile API MB"] = round(len(tiles.content) / 2**20, 1)
        figures |= measure_pages(system, job)
    finally:
        cleanup(system, [job_id] if job_id and not args.keep else [])
    if args.keep:
        figures["kept job"] = job_id
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
