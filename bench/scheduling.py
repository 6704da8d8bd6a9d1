"""The scheduler through the real system: what a submit costs, fairness between users, memory.

Three measurements, each on private topics with web, collector, dispatcher and workers started
as processes (``start_system``), every result checked byte for byte against the chain run on
the whole image in this process:

1. **submit**: ``POST /api/jobs/`` of a 24 MP JPEG (201), against the same body refused at its
   first check (an unparsable chain: 400 once the body is received and parsed) — the upload alone.
2. **fairness**: user A's 24 MP median-5 job (96 tiles), alone; then again with user B's one-tile
   job and user C's 16-tile job submitted once A's first tile is in. Run with the scheduler
   (the default window) and without it (a window of 10^6 tiles: every tile is sent at once, first
   come first served, as before the dispatcher). Per job: submit → first tile stored, submit → done.
3. **memory**: 10 24 MP JPEG jobs queued at once (from 2 users); the dispatcher's peak RSS
   (``VmHWM``) and how long the 10 took.

Run: ``.venv/bin/python -m bench.scheduling [--workers 2] [--port 8101] [--skip-memory]``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar, cast

import django
import requests
from PIL import Image

from bench.e2e import LOG_DIR, cleanup, use_private_database, wait_for_workers
from bench.photo import photo_like
from imagepipe.processes import BASE_DIR, MANAGE, System, start_system

MEDIAN = [{"op": "median", "size": 5}]
INVERT = [{"op": "invert"}]
FIRST_COME_FIRST_SERVED = {"DISPATCH_WINDOW_MIN": "1000000"}
TIMEOUT = 600.0
T = TypeVar("T")


@dataclass
class Upload:
    name: str
    label: str
    data: bytes
    reference: dict[str, bytes]  # chain (as JSON) -> the whole image's result, as raw pixels


def jpeg(width: int, height: int, seed: int) -> bytes:
    buffer = io.BytesIO()
    photo_like(width, height, seed=seed).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def reference(data: bytes, chain: list[dict]) -> bytes:
    """The chain on the whole decoded upload, in this process: what every result must equal."""
    from PIL import Image

    from imagepipe.core.chain import apply_chain
    from imagepipe.core.normalise import normalise
    from imagepipe.core.operations import parse_chain

    image = normalise(Image.open(io.BytesIO(data)))
    return apply_chain(image, parse_chain(chain)).tobytes()


class Bench:
    def __init__(self, system: System, users: list[str]) -> None:
        self.system = system
        self.sessions = {user: self.login(user) for user in users}
        self.jobs: list[str] = []

    def login(self, user: str) -> requests.Session:
        session = requests.Session()
        answer = session.post(
            f"{self.system.url}/api/auth/token/",
            data={"username": user, "password": f"{user}-pass"},
            timeout=10,
        )
        session.headers["Authorization"] = f"Token {answer.json()['token']}"
        return session

    def post(
        self, user: str, upload: Upload, chain: list[dict] | str
    ) -> tuple[requests.Response, float, float]:
        """POST a job; (response, when it was sent, seconds until the answer)."""
        operations = chain if isinstance(chain, str) else json.dumps(chain)
        sent, started = time.time(), time.perf_counter()
        response = self.sessions[user].post(
            f"{self.system.url}/api/jobs/",
            files={"image": (upload.name, upload.data, "image/jpeg")},
            data={"operations": operations, "tile_size": "512"},
            timeout=TIMEOUT,
        )
        return response, sent, time.perf_counter() - started

    def submit(self, user: str, upload: Upload, chain: list[dict]) -> tuple[str, float]:
        response, sent, _ = self.post(user, upload, chain)
        response.raise_for_status()
        self.jobs.append(response.json()["id"])
        return response.json()["id"], sent

    def wait(
        self, user: str, job_id: str, until=lambda job: job["status"] in ("done", "failed", "cancelled")
    ):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            self.system.check_alive()
            job = self.sessions[user].get(f"{self.system.url}/api/jobs/{job_id}/", timeout=10).json()
            if until(job):
                return job
            time.sleep(0.05)
        raise TimeoutError(f"job {job_id} not finished after {TIMEOUT} s; logs in {self.system.log_dir}")

    def check(self, user: str, job_id: str, upload: Upload, chain: list[dict]) -> None:
        job = self.wait(user, job_id)
        if job["status"] != "done":
            raise RuntimeError(f"job {job_id} {job['status']}: {job['error']}")
        result = self.sessions[user].get(f"{self.system.url}/api/jobs/{job_id}/result/", timeout=60)
        with Image.open(io.BytesIO(result.content)) as image:
            if image.tobytes() != upload.reference[json.dumps(chain)]:
                raise RuntimeError(f"job {job_id}: the result differs from the whole-image reference")


def timings(job_id: str, sent: float) -> tuple[float, float, float]:
    """(submit → first tile stored, submit → done, worker-seconds spent on its tiles)."""
    from django.db.models import Min, Sum

    from jobs.models import Job

    job = Job.objects.get(pk=job_id)
    tiles = job.tiles.aggregate(first=Min("finished_at"), busy=Sum("duration_ms"))
    finished = cast(datetime, job.finished_at)  # the job is done
    return tiles["first"].timestamp() - sent, finished.timestamp() - sent, tiles["busy"] / 1000


def measure_submit(bench: Bench, big: Upload, repeat: int = 3) -> dict[str, float]:
    accepted, refused = [], []
    for _ in range(repeat):
        response, _, seconds = bench.post("alice", big, "[")  # refused once parsed: the upload alone
        assert response.status_code == 400, response.text
        refused.append(seconds)
        response, _, seconds = bench.post("alice", big, INVERT)
        response.raise_for_status()
        bench.jobs.append(response.json()["id"])
        bench.sessions["alice"].delete(f"{bench.system.url}/api/jobs/{response.json()['id']}/", timeout=30)
        accepted.append(seconds)
    return {
        "upload refused after parsing s": statistics.median(refused),
        "201 s": statistics.median(accepted),
    }


def measure_fairness(bench: Bench, big: Upload, one: Upload, mid: Upload) -> dict[str, tuple]:
    """A alone; A with B's one-tile job (the issue's case); A with B and C (mixed sizes). B and C
    are submitted once A's first tile is in."""
    alone, sent = bench.submit("alice", big, MEDIAN)
    bench.check("alice", alone, big, MEDIAN)
    rows = {"A alone": timings(alone, sent)}
    for case, others in (("A + B", [("bob", one)]), ("A + B + C", [("bob", one), ("carol", mid)])):
        a, a_sent = bench.submit("alice", big, MEDIAN)
        bench.wait("alice", a, until=lambda job: job["tiles_done"] >= 1)
        submitted = [(user, upload, *bench.submit(user, upload, MEDIAN)) for user, upload in others]
        for user, upload, job_id, _ in submitted:
            bench.check(user, job_id, upload, MEDIAN)
        bench.check("alice", a, big, MEDIAN)
        rows[f"{case}: A"] = timings(a, a_sent)
        for _user, upload, job_id, job_sent in submitted:
            rows[f"{case}: {upload.label}"] = timings(job_id, job_sent)
    return rows


def measure_memory(bench: Bench, big: Upload, count: int = 10) -> dict[str, float]:
    started = time.perf_counter()
    queued = [(user, bench.submit(user, big, INVERT)[0]) for user in ("alice", "bob") * (count // 2)]
    for user, job_id in queued:
        bench.check(user, job_id, big, INVERT)
    dispatcher = bench.system.processes["dispatcher"].pid
    with open(f"/proc/{dispatcher}/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    return {
        "jobs": count,
        "seconds for all": time.perf_counter() - started,
        "dispatcher peak RSS MB": int(fields["VmHWM"].split()[0]) / 1024,
        "dispatcher RSS now MB": int(fields["VmRSS"].split()[0]) / 1024,
    }


def run_system(
    env: dict[str, str], workers: int, port: int, users: list[str], work: Callable[[Bench], T]
) -> T:
    """Start the system on fresh bench topics, run ``work`` on it, stop it and drop everything made."""
    subprocess.run(
        [*MANAGE, "kafka_topics"],
        cwd=BASE_DIR,
        env={**os.environ, **env},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    system = start_system(env=env, workers=workers, port=port, log_dir=LOG_DIR)
    bench = Bench(system, users)
    try:
        wait_for_workers(system, bench.sessions[users[0]], workers)
        return work(bench)
    finally:
        cleanup(system, bench.jobs)


def private_setup(users: list[str]) -> dict[str, str]:
    """This process on fresh bench topics and a private database, with ``users`` (password
    ``<user>-pass``): the environment for ``run_system``."""
    env = {
        "KAFKA_TOPIC_PREFIX": f"bench-{uuid.uuid4().hex[:8]}-",
        "WORKER_HEARTBEAT_SECONDS": "1",
        "DJANGO_SETTINGS_MODULE": "imagepipe.settings",
    }
    os.environ.update(env)
    env["DATABASE_URL"] = use_private_database()
    django.setup()
    for user in users:
        command = [*MANAGE, "ensure_demo_user", "--username", user, "--password", f"{user}-pass"]
        subprocess.run(command, cwd=BASE_DIR, check=True, stdout=subprocess.DEVNULL)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    users = ["alice", "bob", "carol"]
    env = private_setup(users)
    print("making the images and their whole-image references (not timed) ...", flush=True)
    uploads = {}
    sizes = {
        "big": ("A (96 tiles)", 6000, 4000),
        "one": ("B (1 tile)", 500, 400),
        "mid": ("C (16 tiles)", 2048, 2048),
    }
    for seed, (name, (label, width, height)) in enumerate(sizes.items()):
        data = jpeg(width, height, seed)
        uploads[name] = Upload(f"{name}.jpg", label, data, {json.dumps(MEDIAN): reference(data, MEDIAN)})
    big = uploads["big"]
    big.reference[json.dumps(INVERT)] = reference(big.data, INVERT)
    print(
        f"A: 6000x4000 JPEG q90, {len(big.data) / 1e6:.1f} MB; {args.workers} workers, {os.cpu_count()} CPUs"
    )

    def scheduled(bench: Bench) -> tuple:
        return (
            measure_submit(bench, big),
            measure_fairness(bench, big, uploads["one"], uploads["mid"]),
            None if args.skip_memory else measure_memory(bench, big),
        )

    submit, fair, memory = run_system(env, args.workers, args.port, users, scheduled)
    unfair = run_system(
        {**env, **FIRST_COME_FIRST_SERVED},
        args.workers,
        args.port,
        users,
        lambda bench: measure_fairness(bench, big, uploads["one"], uploads["mid"]),
    )
    print("\n## submit (medians of 3)\n")
    print(" | ".join(f"{k}: {v:.2f}" for k, v in submit.items()))
    print("\n## fairness: seconds after submitting; busy = worker-seconds on its tiles\n")
    print("| job | first tile | done | busy | first tile, FCFS | done, FCFS | busy, FCFS |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, row in fair.items():
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in (*row, *unfair[name])) + " |")
    for case in ("A + B", "A + B + C"):
        slower = 100 * (fair[f"{case}: A"][1] / fair["A alone"][1] - 1)
        print(f"\n{case}: A is {slower:+.1f} % slower than alone (scheduler)")
    if memory:
        print("\n## memory: 10 queued 24 MP jobs\n")
        print(" | ".join(f"{k}: {v:.1f}" for k, v in memory.items()))


if __name__ == "__main__":
    main()
