"""Four hosts on one machine: Linux network namespaces joined by virtual Ethernet.

broker (10.77.0.2) runs Kafka; master (10.77.0.3) runs web and collector; w1 and w2
(10.77.0.4, .5) run a worker each. Every process binds its own host's address: no loopback
shortcut. Postgres and Redis stay on this machine's loopback, reached from the master host
through a forwarder on the bridge (10.77.0.1), as a database host would be.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import threading
import time
import uuid

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from PIL import Image, ImageFilter

from imagepipe.processes import BASE_DIR, MANAGE, System, role_env, wait_for_port
from jobs.models import Tile
from pipeline.models import Worker
from tests.images import photo
from tests.topics import as_role, delivery_error

from .conftest import database_url, submit, token_session, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root (CI runs as root)"),
]

BRIDGE, NET = "ipbr0", "10.77.0"
HOSTS = {"broker": 2, "master": 3, "w1": 4, "w2": 5}


def sh(*argv):
    subprocess.run(argv, check=True, capture_output=True)


def netns(host, *argv):
    return ["ip", "netns", "exec", f"ip-{host}", *argv]


def make_network():
    sh("ip", "link", "add", BRIDGE, "type", "bridge")
    sh("ip", "addr", "add", f"{NET}.1/24", "dev", BRIDGE)
    sh("ip", "link", "set", BRIDGE, "up")
    for host, number in HOSTS.items():
        sh("ip", "netns", "add", f"ip-{host}")
        sh("ip", "link", "add", f"v-{host}", "type", "veth", "peer", "name", "eth0", "netns", f"ip-{host}")
        sh("ip", "link", "set", f"v-{host}", "master", BRIDGE, "up")
        sh(*netns(host, "ip", "addr", "add", f"{NET}.{number}/24", "dev", "eth0"))
        sh(*netns(host, "ip", "link", "set", "eth0", "up"))
        sh(*netns(host, "ip", "link", "set", "lo", "up"))


def remove_network():
    for host in HOSTS:
        subprocess.run(["ip", "netns", "del", f"ip-{host}"], capture_output=True)
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)


class Forwarder:
    """TCP from the bridge address to this machine's loopback (Postgres, Redis)."""

    def __init__(self, ports):
        self.loop = asyncio.new_event_loop()
        self.ports = ports
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        for port in ports:
            asyncio.run_coroutine_threadsafe(self.listen(port), self.loop).result(5)

    async def listen(self, port):
        async def relay(reader, writer):
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        async def connect(reader, writer):
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
            await asyncio.gather(relay(reader, up_writer), relay(up_reader, writer))

        await asyncio.start_server(connect, f"{NET}.1", port)

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture(scope="module")
def hosts(system, django_db_blocker, tmp_path_factory):
    # The loopback system shares this test database; its collector's recovery sweep and its
    # dispatcher would take these jobs (whose files live on the master host), so they pause.
    system.stop("collector")
    system.stop("dispatcher")
    remove_network()
    make_network()
    forwarder = Forwarder([5432, 6379])
    var = tmp_path_factory.mktemp("broker-host")
    broker_env = {
        **os.environ,
        "IMAGEPIPE_VAR": str(var),
        "KAFKA_HOST": f"{NET}.2",
        "KAFKA_LIB": str(BASE_DIR / "var" / "kafka" / "lib"),
    }
    services = str(BASE_DIR / "scripts" / "services.sh")
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": f"{NET}.2:9092",
        "DATABASE_URL": database_url().replace("127.0.0.1", f"{NET}.1"),
        "REDIS_URL": f"redis://{NET}.1:6379/0",
        "CACHE_URL": f"redis://{NET}.1:6379/1",
        "ALLOWED_HOSTS": f"{NET}.3",
        "MEDIA_ROOT": str(tmp_path_factory.mktemp("master-media")),
        "KAFKA_TOPIC_PREFIX": f"nets-{uuid.uuid4().hex[:6]}-",
        "WORKER_HEARTBEAT_SECONDS": "1",
        "DISPATCH_TILES_PER_WORKER": "8",  # tiles of milliseconds (see tests/integration/conftest.py)
    }
    secrets = var / "secrets"  # the broker host's, as its services.sh made them
    hosts = System(env=env, log_dir=BASE_DIR / "var" / "log" / "network-hosts", port=8000, secrets=secrets)
    try:
        started = subprocess.run(
            netns("broker", services, "restart", "kafka"),
            env=broker_env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        why = started.stdout + started.stderr
        assert started.returncode == 0, f"the broker host's Kafka did not start:\n{why}"
        admin = {**env, **role_env("admin", secrets)}
        subprocess.run([*MANAGE, "kafka_topics"], cwd=BASE_DIR, env=admin, check=True, capture_output=True)
        hosts.spawn(
            "web",
            netns(
                "master",
                sys.executable,
                "-m",
                "imagepipe.webserver",
                "-b",
                f"{NET}.3",
                "-p",
                "8000",
                "imagepipe.asgi:application",
            ),
            "web",
        )
        hosts.spawn("collector", netns("master", *MANAGE, "runcollector"), "collector")
        hosts.spawn("dispatcher", netns("master", *MANAGE, "rundispatcher"), "dispatcher")
        for host in ("w1", "w2"):
            hosts.spawn(host, netns(host, *MANAGE, "runworker_kafka", "--id", f"worker-on-{host}"), "worker")
        wait_for_port(8000, host=f"{NET}.3")
        with django_db_blocker.unblock():
            wait_for(both_worker_hosts_assigned, "both worker hosts in the group", hosts)
        yield hosts
    finally:
        hosts.stop_all()
        system.start_collector()
        system.start_dispatcher()
        subprocess.run(netns("broker", services, "stop", "kafka"), env=broker_env, capture_output=True)
        forwarder.stop()
        remove_network()


def both_worker_hosts_assigned() -> bool:
    workers = Worker.objects.filter(id__in=["worker-on-w1", "worker-on-w2"], stopped=False)
    owned = [p for worker in workers for p in worker.partitions]
    return len(workers) == 2 and all(w.partitions for w in workers) and len(owned) == len(set(owned))


def test_a_job_crosses_four_hosts_and_survives_losing_a_worker_host(hosts, transactional_db, alice):
    base = f"http://{NET}.3:8000"
    api = token_session(base, "alice", "alice-pass")

    def run(chain, tile_size, cut=None):
        job = submit(api, "coffee.png", chain, tile_size)
        if cut:
            wait_for(
                lambda: api.get(f"{base}/api/jobs/{job['id']}/").json()["tiles_done"] > 20, "20 tiles", hosts
            )
            sh("ip", "link", "set", f"v-{cut}", "down")  # the host drops off the network
        body = wait_for(
            lambda: (
                (b := api.get(f"{base}/api/jobs/{job['id']}/").json())["status"] in ("done", "failed") and b
            ),
            f"job {job['id']}",
            hosts,
            timeout=120,
        )
        assert body["status"] == "done", body["error"]
        return body, api.get(body["result_url"]).content

    blur = [{"op": "gaussian_blur", "radius": 3}]
    body, result = run(blur, 64)
    assert (
        Image.open(io.BytesIO(result)).tobytes()
        == photo("coffee.png").filter(ImageFilter.GaussianBlur(3)).tobytes()
    )
    workers = set(Tile.objects.filter(job_id=body["id"]).values_list("worker", flat=True))
    assert workers == {"worker-on-w1", "worker-on-w2"}  # both worker hosts did tiles

    started = time.monotonic()
    body, result = run(blur, 32, cut="w1")  # 247 tiles: most are left when w1 drops
    assert (
        Image.open(io.BytesIO(result)).tobytes()
        == photo("coffee.png").filter(ImageFilter.GaussianBlur(3)).tobytes()
    )
    assert Tile.objects.filter(job_id=body["id"]).count() == body["tiles_done"] == body["tiles_total"]
    assert time.monotonic() - started < 120
    hosts.kill("w1")  # cut off, it could only wait out its broker timeouts to say goodbye


def test_the_broker_host_refuses_an_anonymous_client_and_a_worker_writing_tasks(hosts):
    broker = hosts.env["KAFKA_BOOTSTRAP_SERVERS"]
    with pytest.raises(KafkaException):
        AdminClient({"bootstrap.servers": broker, "socket.timeout.ms": 3000}).list_topics(timeout=5)
    worker = as_role("worker", hosts.secrets, broker)
    tasks = hosts.env["KAFKA_TOPIC_PREFIX"] + "tasks"
    error = delivery_error(worker, tasks)
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert delivery_error(worker, hosts.env["KAFKA_TOPIC_PREFIX"] + "heartbeats") is None  # its own
