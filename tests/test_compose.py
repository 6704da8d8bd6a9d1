"""The deployment files agree with the code: docker-compose.yml, the Dockerfile and .env.example.

None of these tests needs a database, a broker or Docker: they read the files and ask Django.
"""

from __future__ import annotations

import importlib
import importlib.util
import ipaddress
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands

from imagepipe.webserver import LimitedCommandLineInterface

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
COMPOSE_ENV = ROOT / "compose.env.example"  # docker-compose.yml's own variables
SKIP_DIRS = {".venv", ".git", "var", "tests", "__pycache__", "node_modules"}

# "NAME=value", or "#NAME=value" for a default that depends on the checkout's place.
ENV_LINE = re.compile(r"^#?([A-Z][A-Z0-9_]*)=(.*)$")
ENV_CALL = re.compile(r"""\benv_(?:str|int|float|bool|list)\(\s*["']([A-Z][A-Z0-9_]*)["']""")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def commands(compose: dict) -> dict[str, list[str]]:
    """Each service's command as an argument list (a string command is split as a shell would)."""
    found = {}
    for name, service in compose["services"].items():
        command = service.get("command")
        if command is not None:
            found[name] = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    return found


def env_example(path: Path = ENV_EXAMPLE) -> dict[str, tuple[str, bool]]:
    """Name -> (default, active) for every variable line of .env.example (or another such file)."""
    variables = {}
    for line in path.read_text().splitlines():
        match = ENV_LINE.match(line)
        if match:
            assert match.group(1) not in variables, f"{match.group(1)} is in {path.name} twice"
            variables[match.group(1)] = (match.group(2), not line.startswith("#"))
    return variables


def passthrough_names() -> set[str]:
    """KAFKA_* variables imagepipe/kafka.py builds from librdkafka keys rather than spells out."""
    from pipeline.kafka import _PASSTHROUGH

    return {"KAFKA_" + key.replace(".", "_").upper() for key in _PASSTHROUGH}


def project_sources() -> str:
    texts = []
    # Pruned as it walks: var/ changes underneath (a broker deleting topics' directories).
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [name for name in dirs if name not in SKIP_DIRS]
        texts += [(Path(folder) / name).read_text() for name in files if name.endswith(".py")]
    return "\n".join(texts)


def test_compose_has_every_node_of_the_design(compose):
    services = set(compose["services"])
    assert {"kafka", "postgres", "redis", "web", "collector", "dispatcher", "worker"} <= services


def test_compose_runs_two_worker_replicas(compose):
    assert compose["services"]["worker"]["deploy"]["replicas"] == 2


def test_workers_depend_only_on_the_broker(compose):
    worker = compose["services"]["worker"]
    assert set(worker["depends_on"]) <= {"kafka", "topics"}
    assert worker["volumes"] == ["kafka-ca:/etc/imagepipe/kafka:ro"]  # the broker's CA, read-only
    assert worker["networks"] == ["broker"]


def test_every_compose_command_exists(compose):
    known = get_commands()
    named = set(re.findall(r"manage\.py\s+([A-Za-z0-9_]+)", COMPOSE.read_text()))
    for argv in commands(compose).values():
        if "manage.py" in argv:
            named.add(argv[argv.index("manage.py") + 1])
    assert {"migrate", "kafka_topics", "runcollector", "rundispatcher", "runworker_kafka"} <= named
    assert sorted(n for n in named if n not in known) == []


def test_the_web_server_and_its_application_path_are_importable(compose):
    web_server = ["python", "-m", "imagepipe.webserver"]  # daphne with the request body limits
    cmd = re.search(r"^CMD\s+(\[.*\])\s*$", DOCKERFILE.read_text(), re.MULTILINE)
    assert cmd, "the Dockerfile has no exec-form CMD"
    web_commands = [commands(compose)["web"], json.loads(cmd.group(1))]
    assert [argv[:3] for argv in web_commands] == [web_server, web_server]
    assert {argv[-1] for argv in web_commands} == {"imagepipe.asgi:application"}
    for argv in web_commands:  # daphne's arguments, parsed as the server parses them
        LimitedCommandLineInterface().parser.parse_args(argv[3:])
    assert importlib.util.find_spec("imagepipe.asgi") is not None
    assert callable(importlib.import_module("imagepipe.asgi").application)


def test_the_broker_accepts_the_largest_tile_message(compose, settings):
    broker = compose["services"]["kafka"]["environment"]
    topic_limit = settings.KAFKA_MAX_MESSAGE_BYTES + 64 * 1024  # pipeline.kafka.topic_specs
    assert int(broker["KAFKA_MESSAGE_MAX_BYTES"]) >= topic_limit
    assert int(broker["KAFKA_REPLICA_FETCH_MAX_BYTES"]) >= topic_limit


def test_every_example_variable_is_read_by_the_code():
    sources = project_sources()
    unread = [
        name
        for name in env_example()
        if name not in passthrough_names() and not re.search(rf"\b{name}\b", sources)
    ]
    assert unread == []


def test_every_variable_the_settings_read_is_in_the_example():
    read = set(passthrough_names())
    for module in ("settings.py", "env.py"):
        read |= set(ENV_CALL.findall((ROOT / "imagepipe" / module).read_text()))
    assert "SECRET_KEY" in read and "DATABASE_URL" in read
    assert sorted(read - set(env_example())) == []


def test_the_example_values_are_the_defaults():
    """Exporting the active lines of .env.example changes no setting."""
    probe = (
        "import json, django; django.setup(); from django.conf import settings; "
        "print(json.dumps({k: repr(getattr(settings, k)) for k in dir(settings) if k.isupper()}))"
    )
    example = env_example()
    clean = {k: v for k, v in os.environ.items() if k not in example}
    clean["DJANGO_SETTINGS_MODULE"] = "imagepipe.settings"

    def settings_under(env: dict) -> dict:
        out = subprocess.run(
            [sys.executable, "-c", probe],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    defaults = settings_under(clean)
    exported = settings_under({**clean, **{k: v for k, (v, active) in example.items() if active}})
    assert {k: v for k, v in exported.items() if defaults.get(k) != v} == {}


# --- Least privilege and safe defaults, read from the file as `docker compose` would.

INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)(?:(:?[-?])([^}]*))?\}")
APP_ROLES = ("web", "collector", "dispatcher", "worker")
# Every secret each service holds, by the name compose reads it under: nothing else.
SECRETS = {
    "caddy": set(),
    "kafka-tls": set(),
    "kafka": set(),  # the users' salted passwords are in its metadata, its key in its volume
    "kafka-format": {f"KAFKA_{u}_PASSWORD" for u in ("ADMIN", "DISPATCHER", "WORKER", "COLLECTOR", "WEB")},
    "postgres": {"POSTGRES_SUPERUSER_PASSWORD", "POSTGRES_APP_PASSWORD"},
    "redis": {"REDIS_PASSWORD"},
    "minio": {"MINIO_ROOT_PASSWORD"},
    "storage-init": {"MINIO_ROOT_PASSWORD", "S3_SECRET_ACCESS_KEY"},
    "migrate": {"POSTGRES_APP_PASSWORD"},
    "topics": {"KAFKA_ADMIN_PASSWORD"},
    "web": {
        "SECRET_KEY",
        "METRICS_TOKEN",
        "POSTGRES_APP_PASSWORD",
        "REDIS_PASSWORD",
        "S3_SECRET_ACCESS_KEY",
        "KAFKA_WEB_PASSWORD",
    },
    "collector": {
        "POSTGRES_APP_PASSWORD",
        "REDIS_PASSWORD",
        "S3_SECRET_ACCESS_KEY",
        "KAFKA_COLLECTOR_PASSWORD",
        "RESULT_SIGNING_KEY",
    },
    "dispatcher": {
        "POSTGRES_APP_PASSWORD",
        "REDIS_PASSWORD",
        "S3_SECRET_ACCESS_KEY",
        "KAFKA_DISPATCHER_PASSWORD",
        "TASK_SIGNING_KEY",
    },
    "worker": {"KAFKA_WORKER_PASSWORD", "TASK_SIGNING_KEY", "RESULT_SIGNING_KEY"},
}


def interpolations(node) -> list[tuple[str, str, str]]:
    """(name, operator, argument) of every ${...} in a part of the file; `$${...}` is escaped."""
    text = yaml.safe_dump(node)
    return [(name, op or "", arg or "") for name, op, arg in INTERPOLATION.findall(text)]


def compose_env() -> dict[str, str]:
    return {k: v for k, (v, _) in env_example(COMPOSE_ENV).items()}


def secret_names() -> set[str]:
    return {name for name, value in compose_env().items() if value == ""}


def test_each_service_holds_its_own_secrets_and_no_other(compose):
    held = {
        name: {n for n, _, _ in interpolations(service) if n in secret_names()}
        for name, service in compose["services"].items()
    }
    assert held == SECRETS


def test_every_secret_is_required_and_named_when_missing(compose):
    """`docker compose up` without a secret stops with its message; none has a default to fall to."""
    found = [(n, op, arg) for n, op, arg in interpolations(compose) if n in secret_names()]
    assert {n for n, _, _ in found} == secret_names()
    assert [(n, op) for n, op, arg in found if op != ":?" or n not in arg] == []


def test_the_compose_env_example_lists_what_the_file_reads_with_its_defaults(compose):
    defaults = {n: arg for n, op, arg in interpolations(compose) if op == ":-"}
    assert set(compose_env()) == {n for n, _, _ in interpolations(compose)}
    assert {n: v for n, v in compose_env().items() if v} == defaults
    assert len(secret_names()) == 14


def test_each_role_is_given_what_it_needs_to_start(compose):
    from imagepipe import needs

    for role in APP_ROLES:
        environment = compose["services"][role]["environment"]
        assert set(needs.ROLES[role]) <= set(environment), role
        assert environment["PRODUCTION"] == "1"


def test_each_role_signs_in_to_the_broker_as_itself_over_tls(compose):
    users = {"topics": "admin", **{role: role for role in APP_ROLES}}
    for name, user in users.items():
        environment = compose["services"][name]["environment"]
        assert environment["KAFKA_SASL_USERNAME"] == user
        assert environment["KAFKA_SASL_PASSWORD"].startswith(f"${{KAFKA_{user.upper()}_PASSWORD:?")
        assert environment["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert environment["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert environment["KAFKA_SSL_CA_LOCATION"] == "/etc/imagepipe/kafka/ca.crt"


def test_the_services_urls_carry_their_passwords_and_the_app_is_no_superuser(compose):
    services = compose["services"]
    for role in ("web", "collector", "dispatcher", "migrate"):
        url = services[role]["environment"]["DATABASE_URL"]
        assert url.startswith("postgres://imagepipe:${POSTGRES_APP_PASSWORD:?"), role  # not `postgres`
    for role in ("web", "collector", "dispatcher"):
        assert services[role]["environment"]["REDIS_URL"].startswith("redis://:${REDIS_PASSWORD:?")
    assert services["web"]["environment"]["CACHE_URL"].startswith("redis://:${REDIS_PASSWORD:?")
    assert "--requirepass" in " ".join(services["redis"]["command"])
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith(
        "${POSTGRES_SUPERUSER_PASSWORD:?"
    )


def test_only_the_tls_proxy_is_published(compose):
    published = {name for name, service in compose["services"].items() if service.get("ports")}
    assert published == {"caddy"}
    assert {port.split(":")[0] for port in compose["services"]["caddy"]["ports"]} == {"80", "443"}


def test_the_networks_keep_each_service_to_what_it_talks_to(compose):
    services, networks = compose["services"], compose["networks"]
    assert networks["data"]["internal"] is True and networks["broker"]["internal"] is True
    assert "internal" not in networks["edge"]  # the proxy's: where the ports are published
    on = {name: set(s.get("networks", [])) for name, s in services.items()}
    assert {name for name, nets in on.items() if "edge" in nets} == {"caddy", "web", "minio"}
    assert {name for name, nets in on.items() if "data" in nets} == {
        "postgres", "redis", "minio", "storage-init", "migrate", "web", "collector", "dispatcher"
    }  # fmt: skip
    assert {name for name, nets in on.items() if "broker" in nets} == {
        "kafka", "topics", "web", "collector", "dispatcher", "worker"
    }  # fmt: skip
    assert {name for name, s in services.items() if s.get("network_mode") == "none"} == {
        "kafka-tls",
        "kafka-format",
    }


def test_the_web_believes_forwarded_addresses_from_the_proxy_alone(compose):
    caddy = compose["services"]["caddy"]["networks"]["edge"]["ipv4_address"]
    web = compose["services"]["web"]["environment"]
    assert web["TRUSTED_PROXIES"] == caddy and web["TRUST_X_FORWARDED_PROTO"] == "true"
    (subnet,) = compose["networks"]["edge"]["ipam"]["config"]
    assert ipaddress.ip_address(caddy) in ipaddress.ip_network(subnet["subnet"])


def test_every_image_is_pinned_to_a_release(compose):
    built = {s["image"] for s in compose["services"].values() if "build" in s}
    assert built == {"imagepipe:local"}
    for name, service in compose["services"].items():
        image = service["image"]
        if image in built:
            continue
        repository, _, tag = image.partition(":")
        assert tag and tag != "latest" and re.search(r"\d+\.\d+|\d{4}-\d\d-\d\d", tag), (name, image)
    (base,) = re.findall(r"^FROM\s+(\S+)", DOCKERFILE.read_text(), re.MULTILINE)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base)


def test_every_service_that_stays_up_has_a_healthcheck(compose):
    for name, service in compose["services"].items():
        if service.get("restart") != "no":
            assert service["healthcheck"]["test"], name
    liveness = ["CMD", "python", "-m", "pipeline.liveness"]
    for role in ("collector", "dispatcher", "worker"):
        assert compose["services"][role]["healthcheck"]["test"] == liveness
        assert compose["services"][role]["environment"]["LIVENESS_FILE"].startswith("/tmp/")
        assert "/tmp" in compose["services"][role]["tmpfs"]  # writable on a read-only filesystem
    web_check = " ".join(compose["services"]["web"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/health/" in web_check  # liveness; /ready/ is for a balancer


def test_the_application_containers_run_read_only_and_unprivileged(compose):
    for role in (*APP_ROLES, "migrate", "topics"):
        service = compose["services"][role]
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"], role
        assert "no-new-privileges:true" in service["security_opt"]
    assert re.search(r"^USER imagepipe$", DOCKERFILE.read_text(), re.MULTILINE)
