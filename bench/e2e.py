"""One job end to end through the real system, against one Pillow process.

Starts web + collector + workers on private topics, uploads a 6000 x 4000
photo-like PNG (or ``--image``, a real JPEG or PNG) through the API, polls until
the result is stored, checks it pixel for pixel against a single process running
the same chain on the whole image, and prints the timings.  Run: ``.venv/bin/python -m bench.e2e``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import django
import requests
from PIL import Image

from bench.photo import photo_like
from imagepipe.processes import BASE_DIR, MANAGE, System, role_env, start_system

# The single-process baseline: the catalogue's whole-image Pillow call (for
# gaussian_blur: image.filter(GaussianBlur(r))), timed from open to saved PNG.
SINGLE = """import json, sys, time
started = time.perf_counter()
from PIL import Image
from imagepipe.core.chain import apply_chain
from imagepipe.core.normalise import normalise
from imagepipe.core.operations import parse_chain
image = Image.open(sys.argv[1]); image.load(); image = normalise(image)
apply_chain(image, parse_chain(json.loads(sys.argv[2]))).save(sys.argv[3], compress_level=1)
print(time.perf_counter() - started)"""
JOB_TIMEOUT, LOG_DIR = 600.0, BASE_DIR / "var" / "log" / "bench"
# What the dispatcher and the collector log of a job's serial steps (their time, and how long).
STAGE_INPUT = re.compile(r"job (\S+) stage (\d+) input (decoded|rebuilt|is the stored)\D+ in ([\d.]+) s")
ASSEMBLED = re.compile(r"job (\S+) assembled from .*: encoded in ([\d.]+) s, stored in ([\d.]+) s")
Phase = tuple[str, float, float]  # what, from, to: seconds after the upload started


def use_private_database(name: str = "imagepipe_bench") -> str:
    """Point this process and the system it starts at a database of the bench's own, created and
    migrated here: the dispatcher sends every queued job of its database, so a bench sharing one
    with a running system (or an earlier bench that stopped halfway) would do their work too."""
    import psycopg

    from imagepipe.env import DEFAULT_DATABASE_URL  # not settings: read once, at django.setup()

    shared = urlsplit(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))
    with psycopg.connect(shared.geturl(), autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = shared._replace(path=f"/{name}").geturl()
    subprocess.run([*MANAGE, "migrate", "-v", "0"], cwd=BASE_DIR, check=True)
    # The bench makes its topics and reads them as the broker's admin; the system it starts
    # holds each role's own login (imagepipe.processes).
    os.environ.update(role_env("admin"))
    return os.environ["DATABASE_URL"]


def run_single(original: Path, operations: list[dict], out: Path) -> float:
    done = subprocess.run(
        [sys.executable, "-c", SINGLE, str(original), json.dumps(operations), str(out)],
        cwd=BASE_DIR,
        check=True,
        capture_output=True,
        text=True,
    )
    return float(done.stdout)


def bench_session(system: System) -> requests.Session:
    """A session holding the staff user ``bench``'s API token (``ensure_demo_user`` made it)."""
    api = requests.Session()
    token = api.post(
        f"{system.url}/api/auth/token/", timeout=10, data={"username": "bench", "password": "bench-pass"}
    ).json()["token"]
    api.headers["Authorization"] = f"Token {token}"
    return api


def wait_for_workers(system: System, api: requests.Session, count: int, timeout: float = 90) -> None:
    """Until our own workers (by pid) are online and split the task partitions between them."""
    pids = {p.pid for name, p in system.processes.items() if "-worker-" in name}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        system.check_alive()
        rows = api.get(f"{system.url}/api/workers/", timeout=10).json()["results"]
        ours = [w for w in rows if w["pid"] in pids and w["status"] == "online" and w["partitions"]]
        owned = [p for w in ours for p in w["partitions"]]
        if len(ours) == count and len(owned) == len(set(owned)):
            return
        time.sleep(0.5)
    raise TimeoutError(f"{count} workers not ready after {timeout} s; logs in {system.log_dir}")


def until_ended(
    system: System, api: requests.Session, job: dict, every: float, timeout: float = float("inf")
) -> dict:
    """The job as it is once it has ended, asked for every ``every`` seconds; TimeoutError if it
    has not ended within ``timeout``, RuntimeError (``check_alive``) if a process died."""
    deadline = time.perf_counter() + timeout
    while job["status"] not in ("done", "failed", "cancelled"):
        if time.perf_counter() > deadline:
            raise TimeoutError(
                f"job {job['id']} stuck at {job['status']} ({job['tiles_done']}/"
                f"{job['tiles_total']} tiles); logs in {system.log_dir}"
            )
        system.check_alive()
        time.sleep(every)
        job = api.get(f"{system.url}/api/jobs/{job['id']}/", timeout=30).json()
    return job


def run_job(
    system: System, api: requests.Session, upload: Path, fields: dict, timeout: float
) -> tuple[dict, bytes, list[Phase]]:
    """Upload, poll until done: the job, its result PNG and its timeline (``timeline``)."""
    posted, started = time.time(), time.perf_counter()
    response = api.post(
        f"{system.url}/api/jobs/",
        files={"image": (upload.name, upload.read_bytes())},
        data=fields,
        timeout=timeout,
    )
    accepted = time.perf_counter()
    response.raise_for_status()
    job = until_ended(system, api, response.json(), 0.1, timeout)
    stored = time.perf_counter()
    if job["status"] != "done":
        raise RuntimeError(f"job {job['id']} {job['status']}: {job['error']}")
    result = api.get(f"{system.url}/api/jobs/{job['id']}/result/", timeout=60)
    result.raise_for_status()
    client = [("upload (until POST /api/jobs/ answers)", 0.0, accepted - started)]
    done = ("the poller sees done", stored - started, stored - started)
    return job, result.content, [*client, *timeline(job["id"], posted, system.log_dir), done]


def timeline(job_id: str, posted: float, log_dir: Path) -> list[Phase]:
    """Where a job's time went, from the database's marks and the dispatcher's and collector's logs,
    in seconds after ``posted`` (the server's clock is ours)."""
    from django.db.models import Max, Min

    from jobs.models import Job

    job = Job.objects.get(pk=job_id)
    phases: list[Phase] = [("job and tile rows written", job.created_at.timestamp() - posted, 0.0)]
    inputs = {
        int(found[2]): (at, found) for at, found in logged(log_dir / "dispatcher.log", STAGE_INPUT, job_id)
    }
    for stage in range(len(job.stages)):
        if stage in inputs:
            at, found = inputs[stage]
            what = {
                "decoded": "input decoded",
                "rebuilt": "input rebuilt from the stage before",
                "is the stored": "input: the stage before's stored tiles, as they are",
            }[found[3]]
            phases.append((f"stage {stage}: {what}", at - float(found[4]) - posted, at - posted))
        marks = job.tiles.filter(stage=stage).aggregate(
            first_sent=Min("dispatched_at"),
            last_sent=Max("dispatched_at"),
            first=Min("finished_at"),
            last=Max("finished_at"),
        )
        sent, done = (marks["first_sent"], marks["last_sent"]), (marks["first"], marks["last"])
        phases.append(
            (f"stage {stage}: tiles sent (first step, last step)", *(m.timestamp() - posted for m in sent))
        )
        phases.append((f"stage {stage}: tiles stored (first, last)", *(m.timestamp() - posted for m in done)))
    for at, found in logged(log_dir / "collector.log", ASSEMBLED, job_id)[-1:]:
        encode, store = float(found[2]), float(found[3])
        phases.append(("result encoded", at - store - encode - posted, at - store - posted))
        phases.append(("result stored", at - store - posted, at - posted))
    return [(what, start, max(start, end)) for what, start, end in phases]


def logged(path: Path, pattern: re.Pattern, job_id: str) -> list[tuple[float, re.Match]]:
    """The lines of a process's log about ``job_id`` that match ``pattern``: (when, the match)."""
    found = []
    for line in path.read_text(errors="replace").splitlines() if path.exists() else []:
        match = pattern.search(line)
        if match and match[1] == job_id:
            when = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)
            found.append((when.timestamp(), match))
    return found


def tile_figures(job_id: str, phases: list[Phase], cpus: int) -> tuple[float, float, float]:
    """(seconds when no tile was being worked on, what each tile cost the system beyond the
    worker's own decode and processing in CPU-ms, and that processing in ms a tile)."""
    from django.db.models import Sum

    from jobs.models import Job

    job = Job.objects.get(pk=job_id)
    total = phases[-1][2]
    working = [(start, end) for what, start, end in phases if "tiles s" in what]  # sent .. stored
    spans = [
        (min(s for s, _ in pair), max(e for _, e in pair))
        for pair in zip(working[::2], working[1::2], strict=True)
    ]
    busy = sum(end - start for start, end in spans)
    compute_ms = job.tiles.aggregate(ms=Sum("duration_ms"))["ms"] or 0
    overhead = (busy * cpus * 1000 - compute_ms) / job.tiles_total
    return total - busy, overhead, compute_ms / job.tiles_total


def cleanup(system: System, job_ids: list[str]) -> None:
    """Stop our processes, drop the bench topics and groups, delete the given jobs and files."""
    from jobs import actions
    from jobs.models import Job
    from pipeline import kafka

    system.stop_all()
    admin = kafka.admin()
    groups = [kafka.group(kafka.WORKER_GROUP), kafka.group(kafka.COLLECTOR_GROUP)]
    for future in [
        *admin.delete_topics(list(kafka.topic_specs())).values(),
        *admin.delete_consumer_groups(groups).values(),
    ]:
        if future.exception():
            print(f"cleanup: {future.exception()}")
    for job in Job.objects.filter(pk__in=job_ids):  # ~170 MB of files per 24 MP job
        actions.delete(job)


def peak_memory(system: System) -> dict[str, float]:
    """Each of our processes' peak resident memory so far (VmHWM), in MB."""
    peaks = {}
    for name, process in system.processes.items():
        status = Path(f"/proc/{process.pid}/status").read_text()
        peaks[name] = (
            int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1]) / 1024
        )
    return peaks


def cpu_seconds(system: System) -> dict[str, float]:
    """Each of our processes' processor time so far, user and system, in seconds."""
    return {name: process_seconds(process.pid) for name, process in system.processes.items()}


def broker_seconds() -> float:
    """The local Kafka broker's processor time so far (``scripts/services.sh``'s), 0 if none runs."""
    try:
        return process_seconds(int((BASE_DIR / "var" / "kafka" / "kafka.pid").read_text().split()[0]))
    except (OSError, ValueError):
        return 0.0


def process_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def table(header: list[str], values: list[float]) -> str:
    return "\n".join(
        [
            "| " + " | ".join(header) + " |",
            "|" + "---:|" * len(header),
            "| " + " | ".join(f"{v:.2f}" for v in values) + " |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--op", default="gaussian_blur")
    parser.add_argument("--radius", type=float, default=4, help="ignored if --op has no radius")
    parser.add_argument(
        "--chain", help='a JSON chain, e.g. \'[{"op": "median", "size": 5}]\'; overrides --op'
    )
    parser.add_argument("--tile-size", type=int, default=512)
    parser.add_argument("--size", default="6000x4000", help="of the synthetic photo-like PNG")
    parser.add_argument("--image", help="a real JPEG or PNG to upload instead of the synthetic one")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--keep-jobs", action="store_true", help="keep the jobs and their files")
    args = parser.parse_args()
    env = {
        "KAFKA_TOPIC_PREFIX": f"bench-{uuid.uuid4().hex[:8]}-",
        "WORKER_HEARTBEAT_SECONDS": "1",
        "DJANGO_SETTINGS_MODULE": "imagepipe.settings",
    }
    os.environ.update(env)  # so this process's kafka.topic_specs() names the bench topics
    env["DATABASE_URL"] = use_private_database()
    django.setup()
    from imagepipe.core.operations import OPERATIONS

    has_radius = any(p.name == "radius" for p in OPERATIONS[args.op].params)
    operations = [{"op": args.op, "radius": args.radius} if has_radius else {"op": args.op}]
    operations = json.loads(args.chain) if args.chain else operations
    workdir = Path(tempfile.mkdtemp(prefix="imagepipe-bench-"))
    if args.image:
        original = Path(args.image)
        with Image.open(original) as image:
            width, height, kind = *image.size, f"{image.format} ({original.name})"
    else:
        width, height = (int(v) for v in args.size.split("x"))
        original, kind = workdir / "original.png", "photo-like PNG"
        photo_like(width, height).save(original, compress_level=1)  # not timed
    print(
        f"{width}x{height} {kind}, {original.stat().st_size / 1e6:.1f} MB; {operations}; tile "
        f"{args.tile_size}; {args.workers} workers; {os.cpu_count()} CPUs; {env}"
    )
    # The baseline first, with the machine to itself (nothing of ours running yet).
    singles = [run_single(original, operations, workdir / "single.png") for _ in range(args.repeat)]
    with Image.open(workdir / "single.png") as image:
        reference, reference_size = image.tobytes(), image.size
    print(f"single process: {', '.join(f'{s:.2f}' for s in singles)} s")

    # Staff: it finds its workers by pid, which the API shows to staff only.
    for command in ("kafka_topics", "ensure_demo_user --username bench --password bench-pass --staff"):
        subprocess.run([*MANAGE, *command.split()], cwd=BASE_DIR, check=True, stdout=subprocess.DEVNULL)
    system = start_system(env=env, workers=args.workers, port=args.port, log_dir=LOG_DIR)
    rows: list[list[Phase]] = []
    figures: list[tuple[float, float, float]] = []
    ids: list[str] = []  # jobs to delete at the end: all of them unless asked or wrong
    wrong = 0
    try:
        api = bench_session(system)
        wait_for_workers(system, api, args.workers)
        fields = {"operations": json.dumps(operations), "tile_size": str(args.tile_size)}
        for number in range(1, args.repeat + 1):
            job, result, phases = run_job(system, api, original, fields, JOB_TIMEOUT)
            rows.append(phases)
            figures.append(tile_figures(job["id"], phases, os.cpu_count() or 1))
            with Image.open(io.BytesIO(result)) as image:
                same = image.size == reference_size and image.tobytes() == reference
            print(
                f"job {number} {job['id']}: {job['tiles_total']} tiles, upload->accepted "
                f"{phases[0][2]:.2f} s, upload->stored {phases[-1][2]:.2f} s, identical: {same}"
            )
            if same and not args.keep_jobs:
                ids.append(job["id"])
            wrong += not same
        peaks = peak_memory(system)
    finally:
        cleanup(system, ids)
        if not wrong:
            shutil.rmtree(workdir)

    single = statistics.median(singles)
    total = statistics.median(phases[-1][2] for phases in rows)
    print(f"\nmedians over {len(rows)} job(s); pipeline / single < 1 means the pipeline wins")
    print(
        table(
            ["upload->stored s", "single process s", "pipeline / single"],
            [total, single, total / single],
        )
    )
    print("\nwhere the time goes, seconds after the upload started (medians):")
    print("| phase | from | to | takes |\n|---|---:|---:|---:|")
    for number, (what, *_) in enumerate(rows[0]):
        start = statistics.median(phases[number][1] for phases in rows)
        end = statistics.median(phases[number][2] for phases in rows)
        print(f"| {what} | {start:.2f} | {end:.2f} | {end - start:.2f} |")
    serial, overhead, compute = (statistics.median(column) for column in zip(*figures, strict=True))
    print(
        f"\nserial path (no tile in the works): {serial:.2f} s, {100 * serial / total:.0f} % of the job; "
        f"per tile: {compute:.1f} ms of the worker's decode and processing, and {overhead:.1f} CPU-ms more "
        f"for everything else while tiles were in the works (cut, publish, encode, broker, "
        f"store, row, event; {os.cpu_count()} CPUs)"
    )
    print("peak resident memory, MB: " + ", ".join(f"{name} {mb:.0f}" for name, mb in peaks.items()))
    if wrong:
        sys.exit(f"{wrong} result(s) differ from the single process: jobs and {workdir} kept")


if __name__ == "__main__":
    main()
