"""Soak: minutes of mixed load from several users while workers, the collector and the broker fail.

    .venv/bin/python -m bench.soak [--minutes 60] [--kill-every 180] [--users 4] [--port 8200]
        [--sweep-grace 60] [--drain-timeout 1800]

Users soak1..soakN submit, cancel and retry through the HTTP API at their own pace (``bench.load``).
Meanwhile a worker is killed (SIGKILL) and restarted every --kill-every seconds, the two in turn;
the collector likewise, half a period later; the broker is restarted once, in the middle
(``scripts/services.sh restart kafka``). Then the bench waits for every job to finish, checks every
done job's result pixel for pixel against the chain run on the whole image here
(``tests/core/reference.py``), checks storage against the database (``manage.py sweep_storage
--dry-run``, unnamed files counted beyond --sweep-grace seconds), and prints a summary.

Its own database (``imagepipe_soak``), media folder (``var/soak/<prefix>/``), topic prefix and log
folder (``var/log/soak/<prefix>/``); the topics, groups and jobs are deleted at the end, except
jobs with a wrong result, and the media folder if anything was wrong. Exits 1 if anything was.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import django
import requests
from PIL import Image

from bench.e2e import cleanup, peak_memory, use_private_database, wait_for_workers
from bench.load import PACES, Upload, User, login, uploads
from imagepipe.processes import BASE_DIR, MANAGE, System, start_system

if TYPE_CHECKING:
    from django.db.models import QuerySet

SWEPT = re.compile(
    r"(?P<listed>\d+) files listed; (?P<unnamed>\d+) no row names would delete, (?P<recent>\d+) more kept"
    r".*missing: (?P<results>\d+) results \((?P<failed>\d+) jobs failed\), (?P<originals>\d+) originals, "
    r"(?P<tiles>\d+) tiles"
)


@dataclass
class Faults:
    """The kills and the broker restart, on their clock; each process's peak memory on the way."""

    system: System
    counts: Counter[str] = field(default_factory=Counter)
    peaks: dict[str, float] = field(default_factory=dict)
    broker_seconds: list[float] = field(default_factory=list)

    def run(self, started: float, until: float, every: float, progress: Callable[[], None]) -> None:
        for at, fault in schedule(until - started, every):
            self.wait_until(started + at, progress)
            self.note_peaks()
            getattr(self, fault)()
        self.wait_until(until, progress)

    def wait_until(self, when: float, progress: Callable[[], None]) -> None:
        while time.monotonic() < when:
            self.system.check_alive()
            progress()
            time.sleep(min(1.0, max(0.0, when - time.monotonic())))

    def kill_worker(self) -> None:
        workers = sorted(name for name in self.system.processes if "-worker-" in name)
        victim = workers[self.counts["worker kills"] % len(workers)]
        self.system.kill(victim)
        self.system.start_worker(victim)
        self.counts["worker kills"] += 1

    def kill_collector(self) -> None:
        self.system.kill("collector")
        self.system.start_collector()
        self.counts["collector kills"] += 1

    def restart_broker(self) -> None:
        began = time.monotonic()
        services = [str(BASE_DIR / "scripts" / "services.sh"), "restart", "kafka"]
        subprocess.run(services, cwd=BASE_DIR, check=True, capture_output=True)
        self.broker_seconds.append(time.monotonic() - began)
        self.counts["broker restarts"] += 1

    def note_peaks(self) -> None:
        """Before a kill takes a process's peak with it."""
        for name, mb in peak_memory(self.system).items():
            self.peaks[name] = max(mb, self.peaks.get(name, 0.0))


def schedule(seconds: float, every: float) -> list[tuple[float, str]]:
    """(when, the Faults method): worker kills every ``every`` s, collector kills between them, one
    broker restart mid-way (a quarter period off the kills)."""
    periods = range(int(seconds // every) + 1)
    faults = [(at * every, "kill_worker") for at in periods if at]
    faults += [((at + 0.5) * every, "kill_collector") for at in periods]
    faults.append((seconds / 2 + every / 4, "restart_broker"))
    return sorted(fault for fault in faults if fault[0] < seconds)


def setup(users: list[str]) -> dict[str, str]:
    """This process and the system's environment; the private database, the users, the topics."""
    prefix = f"soak-{uuid.uuid4().hex[:8]}-"
    env = {
        "KAFKA_TOPIC_PREFIX": prefix,
        "WORKER_HEARTBEAT_SECONDS": "1",
        "DJANGO_SETTINGS_MODULE": "imagepipe.settings",
        "MEDIA_ROOT": str(BASE_DIR / "var" / "soak" / prefix.strip("-")),
    }
    os.environ.update(env)  # so this process's settings name the soak's topics and files
    env["DATABASE_URL"] = use_private_database("imagepipe_soak")
    django.setup()
    from django.core.management import call_command

    from jobs.models import Job

    Job.objects.all().delete()  # an earlier soak's that stopped halfway (its files are in its folder)
    for name in [*users, "soak-admin"]:  # the admin sees the workers' pids, to wait for them
        call_command("ensure_demo_user", username=name, password=f"{name}-pass", staff=name == "soak-admin")
    call_command("kafka_topics")
    return env


def drain(system: System, timeout: float) -> float:
    """Until no job is unfinished; how long that took."""
    from jobs.models import Job

    began = time.monotonic()
    while left := Job.objects.unfinished().count():
        if time.monotonic() > began + timeout:
            raise TimeoutError(f"{left} jobs unfinished after {timeout:.0f} s; logs in {system.log_dir}")
        system.check_alive()
        time.sleep(2)
    return time.monotonic() - began


def check_results(users: dict[str, User], files: dict[str, Upload]) -> tuple[int, list[str]]:
    """Every done job's result, downloaded by its owner, against the chain on the whole image:
    (how many are pixel-identical, the ids of those that are not)."""
    from jobs.models import Job
    from tests.core.reference import reference

    references: dict[tuple[str, str], tuple] = {}
    exact, wrong = 0, []
    for job in Job.objects.filter(status=Job.Status.DONE).select_related("owner").order_by("created_at"):
        key = (job.original_name, json.dumps(job.operations))
        if key not in references:
            expected = reference(files[job.original_name].image(), job.operations)
            references[key] = (expected.mode, expected.size, expected.tobytes())
        result = users[job.owner.username].call("GET", f"{job.pk}/result/")
        with Image.open(io.BytesIO(result.content)) as image:
            same = (image.mode, image.size, image.tobytes()) == references[key]
        exact += same
        if not same:
            wrong.append(str(job.pk))
    return exact, wrong


def sweep(grace: float) -> tuple[dict[str, int], list[str]]:
    """``manage.py sweep_storage --dry-run``: its summary's figures, and its findings."""
    done = subprocess.run(
        [*MANAGE, "sweep_storage", "--dry-run"],
        cwd=BASE_DIR,
        env={**os.environ, "SWEEP_GRACE_SECONDS": str(grace)},
        check=True,
        capture_output=True,
        text=True,
    )
    lines = done.stdout.strip().splitlines()
    found = SWEPT.search(lines[-1])
    if found is None:
        raise RuntimeError(f"sweep_storage said: {done.stdout}")
    return {key: int(value) for key, value in found.groupdict().items()}, lines[:-1]


@dataclass
class Outcome:
    """What the soak found, read before its jobs are deleted."""

    minutes: float  # of load
    drained: float  # seconds after the load until every job had finished
    status: dict[str, int]
    by_user: dict[str, int]
    tiles: tuple[int, int, int]  # recorded, in all, done jobs whose tiles are not each recorded once
    mix: str  # the images and tile sizes the jobs had
    exact: int  # done jobs pixel-identical to the reference
    wrong: list[str]  # done jobs that are not
    swept: dict[str, int]
    findings: list[str]

    @property
    def broken(self) -> bool:
        lost = ("unnamed", "results", "originals", "tiles")
        uneven = self.tiles[2]
        return bool(self.wrong or uneven or self.status["failed"] or any(self.swept[key] for key in lost))


def tiles(jobs: QuerySet) -> tuple[int, int, int]:
    """(tiles recorded, tiles in all, done jobs whose tiles are not each recorded exactly once)."""
    from django.db.models import Count, F, Q, Sum

    from jobs.models import Job, Tile

    done = jobs.filter(status=Job.Status.DONE)
    recorded = done.annotate(n=Count("tiles", filter=Q(tiles__state=Tile.State.DONE)))
    uneven = recorded.exclude(n=F("tiles_total"), tiles_done=F("tiles_total")).count()
    sums = jobs.aggregate(done=Sum("tiles_done"), total=Sum("tiles_total"))
    return sums["done"] or 0, sums["total"] or 0, uneven


def mix(jobs: QuerySet) -> str:
    from django.db.models import Count

    images = dict(jobs.values_list("original_name").annotate(n=Count("pk")).order_by())
    sizes = dict(jobs.values_list("tile_size").annotate(n=Count("pk")).order_by("tile_size"))
    return (
        ", ".join(f"{name} {n}" for name, n in sorted(images.items()))
        + "; tile sizes "
        + ", ".join(f"{size} px {n}" for size, n in sizes.items())
    )


def outcome(users: dict[str, User], minutes: float, drained: float, grace: float, files) -> Outcome:
    from django.db.models import Count

    from jobs.models import Job

    jobs = Job.objects.all()
    by_user = dict(jobs.values_list("owner__username").annotate(n=Count("pk")).order_by())
    exact, wrong = check_results(users, files)
    swept, findings = sweep(grace)
    return Outcome(
        minutes,
        drained,
        statuses(jobs),
        {name: by_user.get(name, 0) for name in users},
        tiles(jobs),
        mix(jobs),
        exact,
        wrong,
        swept,
        findings,
    )


def report(args: argparse.Namespace, found: Outcome, users: dict[str, User], faults: Faults) -> None:
    print(f"\nsoak: {found.minutes:.1f} min of load, then {found.drained:.0f} s until every job had finished")
    for name, user in users.items():
        told = ", ".join(f"{k} {v}" for k, v in sorted(user.counts.items()) if k != "submitted")
        print(f"  {name}: {found.by_user[name]} jobs ({told or 'none cancelled'})")
    status = ", ".join(f"{k} {v}" for k, v in found.status.items() if v)
    print(f"  status: {status}; pixel-identical {found.exact}/{found.status['done']} done")
    print(f"  jobs: {found.mix}")
    recorded, total, uneven = found.tiles
    print(f"  tiles recorded: {recorded}/{total}; done jobs with a tile not recorded exactly once: {uneven}")
    broker = ", ".join(f"{s:.1f} s" for s in faults.broker_seconds)
    print(
        f"  faults: {faults.counts['worker kills']} worker kills, {faults.counts['collector kills']} "
        f"collector kills (every {args.kill_every:g} s each), {faults.counts['broker restarts']} broker "
        f"restart ({broker or 'none'})"
    )
    swept = found.swept
    print(
        f"  storage (sweep_storage --dry-run, grace {args.sweep_grace:g} s): {swept['listed']} files; "
        f"unnamed {swept['unnamed']} beyond the grace, {swept['recent']} within; missing "
        f"{swept['results']} results, {swept['originals']} originals, {swept['tiles']} tiles"
    )
    for line in found.findings[:10]:
        print(f"    {line}")
    print("  peak RSS, MB: " + ", ".join(f"{name} {mb:.0f}" for name, mb in faults.peaks.items()))
    for name, user in users.items():
        for error in user.errors[:5]:
            print(f"  {name}, HTTP error: {error}")
    if found.wrong:
        print(f"  wrong results (jobs kept): {', '.join(found.wrong)}")


def watcher(started: float, running: list[Future], faults: Faults) -> Callable[[], None]:
    """Raises if a user's thread ended early; prints a line a minute (the jobs, the faults)."""
    from jobs.models import Job

    last = [started]

    def watch() -> None:
        for future in running:
            if future.done():
                future.result()  # its exception, if any
                raise RuntimeError("a user stopped before the end")
        if time.monotonic() - last[0] < 60:
            return
        last[0] = time.monotonic()
        status = ", ".join(f"{k} {v}" for k, v in statuses(Job.objects.all()).items() if v)
        print(f"{(last[0] - started) / 60:.0f} min: {status}; {dict(faults.counts)}", flush=True)

    return watch


def load(users: dict[str, User], faults: Faults, files: list[Upload], minutes: float, every: float) -> float:
    """The users' load and the faults together; the minutes it ran."""
    started = time.monotonic()
    until, stop = started + minutes * 60, threading.Event()
    with ThreadPoolExecutor(len(users)) as pool:
        running = [pool.submit(user.run, files, until, stop) for user in users.values()]
        try:
            faults.run(started, until, every, watcher(started, running, faults))
        finally:
            stop.set()
        for future in running:
            future.result()
    return (time.monotonic() - started) / 60


def soak(
    system: System, args: argparse.Namespace, names: list[str]
) -> tuple[Outcome, dict[str, User], Faults]:
    admin = requests.Session()
    admin.headers["Authorization"] = f"Token {login(system.url, 'soak-admin')}"
    wait_for_workers(system, admin, 2)
    files = {upload.name: upload for upload in uploads()}
    users = {name: User(name, system.url, PACES[n % len(PACES)]) for n, name in enumerate(names)}
    faults = Faults(system)
    minutes = load(users, faults, list(files.values()), args.minutes, args.kill_every)
    drained = drain(system, args.drain_timeout)
    faults.note_peaks()
    return outcome(users, minutes, drained, args.sweep_grace, files), users, faults


def statuses(jobs) -> dict[str, int]:
    """How many of ``jobs`` are in each status, zero included."""
    from jobs.models import Job

    counts = Counter(jobs.values_list("status", flat=True))
    return {status: counts[status] for status in Job.Status.values}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--kill-every", type=float, default=180, help="seconds between two kills of a kind")
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--port", type=int, default=8200)
    parser.add_argument("--sweep-grace", type=float, default=60, help="seconds an unnamed file may be new")
    parser.add_argument("--drain-timeout", type=float, default=1800, help="seconds for the last jobs")
    args = parser.parse_args()
    names = [f"soak{number}" for number in range(1, args.users + 1)]
    env = setup(names)
    log_dir = BASE_DIR / "var" / "log" / "soak" / env["KAFKA_TOPIC_PREFIX"].strip("-")
    system = start_system(env=env, workers=2, port=args.port, log_dir=log_dir)
    print(f"{args.minutes:g} min, {args.users} users, kills every {args.kill_every:g} s; logs in {log_dir}")
    found: Outcome | None = None
    try:
        found, users, faults = soak(system, args, names)
    finally:  # jobs kept if the soak broke, or their results were wrong
        cleanup(system, [] if found is None else delete_all_but(found.wrong))
    report(args, found, users, faults)
    if found.broken:
        sys.exit(1)
    shutil.rmtree(env["MEDIA_ROOT"], ignore_errors=True)


def delete_all_but(keep: list[str]) -> list[str]:
    from jobs.models import Job

    return [str(pk) for pk in Job.objects.exclude(pk__in=keep).values_list("pk", flat=True)]


if __name__ == "__main__":
    main()
