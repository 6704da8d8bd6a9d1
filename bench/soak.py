"""Soak: 50 jobs at once while a worker is killed (SIGKILL) and restarted, again and again.

    .venv/bin/python -m bench.soak [--jobs 50] [--kills 5] [--every 4]

Reports jobs completed (each checked pixel for pixel against the whole-image reference), tiles
recorded, duplicate results dropped by the collector (tiles that were redelivered), and the time.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import os
import re
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import django
import requests
from PIL import Image

from bench.e2e import cleanup, wait_for_workers
from imagepipe.processes import BASE_DIR, MANAGE, role_env, start_system

PHOTO = BASE_DIR / "tests" / "data" / "coffee.png"
CHAIN = [{"op": "median", "size": 5}, {"op": "gaussian_blur", "radius": 2}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--every", type=float, default=4.0, help="seconds between kills")
    parser.add_argument("--tile-size", type=int, default=64)
    args = parser.parse_args()
    env = {
        "KAFKA_TOPIC_PREFIX": f"soak-{uuid.uuid4().hex[:8]}-",
        "WORKER_HEARTBEAT_SECONDS": "1",
        "DJANGO_SETTINGS_MODULE": "imagepipe.settings",
        "JOB_SUBMIT_RATE": "1000/minute",
        "QUOTA_UNFINISHED_JOBS": "0",  # it submits every job at once, on purpose: --jobs may be many
    }
    os.environ.update(env)
    os.environ.update(role_env("admin"))  # the bench makes and reads topics as the broker's admin
    django.setup()
    from jobs.models import Job
    from tests.core.reference import reference

    expected = reference(Image.open(PHOTO), CHAIN).tobytes()
    for command in ("kafka_topics", "ensure_demo_user --username soak --password soak-pass"):
        subprocess.run([*MANAGE, *command.split()], cwd=BASE_DIR, check=True, stdout=subprocess.DEVNULL)
    system = start_system(env=env, workers=2, port=8200, log_dir=BASE_DIR / "var" / "log" / "soak")
    ids: list[str] = []
    try:
        api = requests.Session()
        token = api.post(
            f"{system.url}/api/auth/token/", data={"username": "soak", "password": "soak-pass"}, timeout=10
        ).json()["token"]
        api.headers["Authorization"] = f"Token {token}"
        wait_for_workers(system, api, 2)
        started = time.monotonic()

        def submit(_):
            with open(PHOTO, "rb") as handle:
                return api.post(
                    f"{system.url}/api/jobs/",
                    files={"image": handle},
                    timeout=60,
                    data={"operations": json.dumps(CHAIN), "tile_size": args.tile_size},
                ).json()["id"]

        with ThreadPoolExecutor(8) as pool:  # "at once": as fast as the web takes them
            ids = list(pool.map(submit, range(args.jobs)))
        victim = next(name for name in system.processes if "worker" in name)
        for _ in range(args.kills):
            time.sleep(args.every)
            system.kill(victim)
            system.start_worker(victim)
        while Job.objects.filter(pk__in=ids, status__in=["queued", "running", "assembling"]).exists():
            system.check_alive()
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        jobs = Job.objects.filter(pk__in=ids)
        exact = sum(
            Image.open(io.BytesIO(api.get(f"{system.url}/api/jobs/{pk}/result/").content)).tobytes()
            == expected
            for pk in ids
        )
        total = sum(job.tiles_total for job in jobs)
        recorded = sum(job.tiles_done for job in jobs)
        done = jobs.filter(status="done").count()
    finally:
        cleanup(system, ids)
    counts = ast.literal_eval(
        re.findall(r"counts: (\{.*\})", (system.log_dir / "collector.log").read_text())[-1]
    )
    print(
        f"{args.jobs} jobs of {total // args.jobs} tiles, a worker killed {args.kills} times every "
        f"{args.every:.0f} s:"
    )
    redelivered = counts.get("duplicates", 0) + counts.get("late", 0)
    print(
        f"  done {done}/{args.jobs}, pixel-identical {exact}/{args.jobs}, tiles recorded {recorded}/{total}, "
        f"redelivered results dropped {redelivered} {counts}, {elapsed:.1f} s"
    )


if __name__ == "__main__":
    main()
