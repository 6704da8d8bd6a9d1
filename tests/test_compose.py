"""The deployment files agree with the code: docker-compose.yml, the Dockerfile and .env.example.

None of these tests needs a database, a broker or Docker: they read the files and ask Django.
"""

from __future__ import annotations

import importlib
import importlib.util
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


def env_example() -> dict[str, tuple[str, bool]]:
    """Name -> (default, active) for every variable line of .env.example."""
    variables = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = ENV_LINE.match(line)
        if match:
            assert match.group(1) not in variables, f"{match.group(1)} is in .env.example twice"
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
    assert set(compose["services"]["worker"]["depends_on"]) <= {"kafka", "topics"}
    assert "volumes" not in compose["services"]["worker"]


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
