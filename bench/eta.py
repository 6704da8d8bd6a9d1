"""How true the job page's "time left" is: a 24 MP job watched in Chromium from its first tile.

The system runs as processes on private topics and a private database (as ``bench.scheduling``
does); alice's job is submitted with the job page already open, and the page is watched through a
MutationObserver: every change of the tile count, of "time left" and of the status, stamped with
the browser's clock. At 25, 50 and 75 % of the tiles, the time left shown is compared with what was
really left: until the last tile (what the figure promises for the last stage) and until done (what
a person waits for). Each result is checked byte for byte against the chain on the whole image.

Run: ``.venv/bin/python -m bench.eta [--repeat 3] [--port 8102]`` (Debian's Chromium).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics

from playwright.sync_api import sync_playwright

from bench.scheduling import Bench, Upload, jpeg, private_setup, reference, run_system

CHAINS: dict[str, list[dict]] = {
    "gaussian_blur r4": [{"op": "gaussian_blur", "radius": 4}],
    "median 5 → grayscale": [{"op": "median", "size": 5}, {"op": "grayscale"}],
    "blur r2 → median 5 → unsharp mask": [
        {"op": "gaussian_blur", "radius": 2},
        {"op": "median", "size": 5},
        {"op": "unsharp_mask", "radius": 2, "percent": 150, "threshold": 3},
    ],
}
MARKS = (0.25, 0.5, 0.75)
CHROMIUM = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# Every change of the count, the time left and the status, with the browser's clock.
WATCH = """() => {
  window.seen = [];
  const note = () => window.seen.push({t: performance.now(), count: Number(document.getElementById("count")
    .textContent), eta: document.getElementById("eta").textContent, status: document.getElementById("status")
    .textContent});
  for (const id of ["count", "eta", "status"]) {
    new MutationObserver(note).observe(document.getElementById(id), {childList: true, characterData: true,
                                                                      subtree: true});
  }
}"""


def seconds(text: str) -> float | None:
    """The number of seconds a "time left" text gives, if it gives one."""
    found = re.match(r"([\d.]+) s", text)
    return float(found.group(1)) if found else None


def errors(seen: list[dict], total: int) -> dict[float, dict]:
    """At each mark: the time left shown, what was left until the last tile and until done."""
    done = next(s["t"] for s in seen if s["status"] == "done")
    last_tile = next((s["t"] for s in seen if s["count"] == total), done)  # a page may count on late
    found = {}
    for mark in MARKS:
        shown = next(s for s in seen if s["count"] >= mark * total and seconds(s["eta"]) is not None)
        found[mark] = {
            "count": shown["count"],
            "shown": seconds(shown["eta"]),
            "to last tile": (last_tile - shown["t"]) / 1000,
            "to done": (done - shown["t"]) / 1000,
        }
    return found


def watch(bench: Bench, browser, upload: Upload, chain: list[dict]) -> dict[float, dict]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{bench.system.url}/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "alice-pass")
    page.click("button[type=submit]")
    page.wait_for_url(f"{bench.system.url}/")
    job_id, _ = bench.submit("alice", upload, chain)
    page.goto(f"{bench.system.url}/jobs/{job_id}/")
    page.evaluate(WATCH)
    page.wait_for_function("document.getElementById('status').textContent === 'done'", timeout=600_000)
    bench.check("alice", job_id, upload, chain)
    total = int(page.text_content("#total"))
    seen = page.evaluate("window.seen")
    found = errors(seen, total)
    if os.environ.get("ETA_DUMP"):
        with open(os.environ["ETA_DUMP"], "a") as dump:
            dump.write(json.dumps({"chain": chain, "total": total, "seen": seen}) + "\n")
    page.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8102)
    args = parser.parse_args()
    env = private_setup(["alice"])
    data = jpeg(6000, 4000, seed=0)
    upload = Upload("photo.jpg", "24 MP", data, {json.dumps(c): reference(data, c) for c in CHAINS.values()})
    print(f"6000x4000 JPEG q90, tiles of 512 (96), {args.workers} workers, {os.cpu_count()} CPUs", flush=True)

    def measure(bench: Bench) -> dict[str, list[dict[float, dict]]]:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM)
            runs = {
                name: [watch(bench, browser, upload, chain) for _ in range(args.repeat)]
                for name, chain in CHAINS.items()
            }
            browser.close()
        return runs

    runs = run_system(env, args.workers, args.port, ["alice"], measure)
    print("\nchain | at | shown (median) | really left to the last tile | to done | error vs done")
    for name, found in runs.items():
        for mark in MARKS:
            shown = statistics.median(run[mark]["shown"] for run in found)
            to_last = statistics.median(run[mark]["to last tile"] for run in found)
            to_done = statistics.median(run[mark]["to done"] for run in found)
            error = statistics.median((run[mark]["shown"] - run[mark]["to done"]) for run in found)
            print(
                f"{name} | {mark:.0%} | {shown:.2f} s | {to_last:.2f} s | {to_done:.2f} s | "
                f"{error:+.2f} s ({error / to_done:+.0%})"
            )
        for run in found:
            print("   run:", {f"{m:.0%}": run[m] for m in MARKS})


if __name__ == "__main__":
    main()
