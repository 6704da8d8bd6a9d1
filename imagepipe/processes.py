"""Start and stop ImagePipe's processes on this machine: web, collector, dispatcher, workers.

One launcher shared by ``scripts/run.sh`` (the local system), the integration
tests and the end-to-end benchmark, so all three run the real commands the same
way.  Run as ``python -m imagepipe.processes`` to start everything and wait for
Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
MANAGE = [sys.executable, str(BASE_DIR / "manage.py")]
# The local services' secrets (scripts/services.sh): each role's broker login and signing keys.
SECRETS_DIR = Path(os.environ.get("IMAGEPIPE_VAR") or BASE_DIR / "var") / "secrets"
# What one role holds and another must not inherit.
ROLE_SECRETS = ("KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "TASK_SIGNING_KEY", "RESULT_SIGNING_KEY")
# glibc's allocator, as the image sets it (Dockerfile, docker-compose.yml): blocks of 4 MiB and more
# (bands of rows) are always mapped on their own and given back when freed, instead of the
# threshold rising after the first frees and later bands being carved from a heap that then never
# shrinks. Smaller ones (a tile's message, 800 KB at 512 px) come from the heap and are reused:
# mapping each afresh cost its page faults on every copy, about a third of a millisecond per tile
# and copy (bench/README). The dispatcher maps everything from 128 KiB: with tile-sized blocks
# from its heap (beside libvips' buffers) it kept 53 MB more after a 100 MP job than after a 5 MP
# one, where it should keep a band of rows (tests/integration/test_big_images.py).
MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(4 << 20)}
MALLOC_OF_ROLE = {"dispatcher": {"MALLOC_MMAP_THRESHOLD_": str(128 << 10)}}


def role_env(role: str, secrets: Path = SECRETS_DIR) -> dict[str, str]:
    """What a process of ``role`` (admin, dispatcher, worker, collector, web) needs from
    ``secrets``; nothing if there are none (a broker without security)."""
    path = secrets / f"{role}.env"
    if not path.exists():
        return {}
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


@dataclass
class System:
    env: dict[str, str]
    log_dir: Path
    port: int = 8000
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    secrets: Path = SECRETS_DIR

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self, name: str, argv: list[str], role: str) -> subprocess.Popen:
        """Start ``argv`` as ``name``, holding only ``role``'s secrets."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")
        env = MALLOC_OF_ROLE.get(role, MALLOC) | self.env
        if own := role_env(role, self.secrets):
            env = {key: value for key, value in env.items() if key not in ROLE_SECRETS} | own
        process = subprocess.Popen(
            argv, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes[name] = process
        return process

    def start_web(self) -> None:
        self.spawn(
            "web",
            [
                sys.executable,
                "-m",
                "imagepipe.webserver",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "imagepipe.asgi:application",
            ],
            "web",
        )
        wait_for_port(self.port, process=self.processes["web"])

    def start_collector(self) -> None:
        self.spawn("collector", [*MANAGE, "runcollector"], "collector")

    def start_dispatcher(self, name: str = "dispatcher") -> subprocess.Popen:
        return self.spawn(name, [*MANAGE, "rundispatcher"], "dispatcher")

    def start_worker(self, name: str) -> subprocess.Popen:
        return self.spawn(name, [*MANAGE, "runworker_kafka", "--id", name], "worker")

    def stop(self, name: str, timeout: float = 20) -> int | None:
        """SIGTERM, wait for a clean exit, SIGKILL if it hangs."""
        process = self.processes.pop(name)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def kill(self, name: str) -> None:
        """SIGKILL: no chance to flush, commit or say goodbye (the fault tests' crash)."""
        process = self.processes.pop(name)
        process.kill()
        process.wait()

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def check_alive(self) -> None:
        dead = {n: p.returncode for n, p in self.processes.items() if p.poll() is not None}
        if dead:
            raise RuntimeError(f"processes exited: {dead}; logs in {self.log_dir}")


def wait_for_port(
    port: int, timeout: float = 30, process: subprocess.Popen | None = None, host: str = "127.0.0.1"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before port {port} opened")
        with socket.socket() as sock:
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on port {port} after {timeout} s")


def start_system(
    env: dict[str, str] | None = None, workers: int = 2, port: int = 8000, log_dir: Path | None = None
) -> System:
    system = System(env={**os.environ, **(env or {})}, port=port, log_dir=log_dir or BASE_DIR / "var" / "log")
    try:
        system.start_web()
        system.start_collector()
        system.start_dispatcher()
        for number in range(1, workers + 1):
            system.start_worker(f"{socket.gethostname()}-worker-{number}")
    except Exception:
        system.stop_all()
        raise
    return system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    system = start_system(workers=args.workers, port=args.port)
    print(f"ImagePipe is up at {system.url}/  (logs in {system.log_dir}; Ctrl-C stops)", flush=True)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        while not stopping:
            system.check_alive()
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping web, collector, dispatcher and workers ...", flush=True)
        system.stop_all()


if __name__ == "__main__":
    main()
