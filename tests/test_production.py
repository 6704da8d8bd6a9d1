"""PRODUCTION=true: `manage.py check --deploy` has nothing to say, unsafe set-ups refuse to start, and
each role starts with what it is given and nothing more. Every test loads the real settings in a
process of its own, with the environment a deployment would give it."""

import json
import os
import subprocess
import sys

import pytest

from imagepipe.processes import BASE_DIR, MANAGE

SECRET = "p" * 20 + "-production-secret-from-the-environment-0123456789"
# Everything a test's environment may set; none of it leaks in from the suite's own environment.
OURS = {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "PRODUCTION"}
OURS |= {"DATABASE_URL", "REDIS_URL", "CACHE_URL", "KAFKA_BOOTSTRAP_SERVERS"}
# What every production process is given: its host names and its own broker credentials.
BROKER = {
    "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KAFKA_SASL_USERNAME": "worker",
    "KAFKA_SASL_PASSWORD": "worker-password",
}
PRODUCTION = {"PRODUCTION": "true", "ALLOWED_HOSTS": "imagepipe.example.org", **BROKER}
PROBE = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'DEBUG': s.DEBUG, 'DATABASES': s.DATABASES, "
    "'CHANNEL_LAYERS': s.CHANNEL_LAYERS, 'CACHE': s.CACHES['default']['BACKEND']}))"
)


# Loads the settings module alone: what it refuses, it refuses here, in a fraction of a setup's time.
LOAD = [sys.executable, "-c", "from django.conf import settings; settings.INSTALLED_APPS"]


def environment(**env) -> dict[str, str]:
    clean = {
        k: v for k, v in os.environ.items() if k not in OURS and not k.startswith(("KAFKA_SASL", "KAFKA_SEC"))
    }
    return {**clean, "DJANGO_SETTINGS_MODULE": "imagepipe.settings", **env}


def run(argv: list[str], **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, cwd=BASE_DIR, env=environment(**env), capture_output=True, text=True, timeout=60
    )


def check(**env):
    return run([*MANAGE, "check", "--deploy", "--fail-level", "WARNING"], **env)


def settings_under(**env) -> dict:
    done = run([sys.executable, "-c", PROBE], **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def refusal(argv: list[str], **env) -> str:
    """What a process that refuses to start says; it must not have started."""
    done = run(argv, **env)
    assert done.returncode != 0, done.stdout + done.stderr
    return done.stderr


def test_production_settings_pass_check_deploy_without_a_warning():
    done = check(**PRODUCTION, SECRET_KEY=SECRET)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


def test_development_settings_do_warn():
    """Guards the test above: check --deploy does complain about the local defaults."""
    assert check().returncode != 0


def test_production_refuses_debug_and_missing_hosts():
    assert "DEBUG off" in refusal(LOAD, **PRODUCTION, DEBUG="true")
    assert "PRODUCTION needs ALLOWED_HOSTS" in refusal(LOAD, **{**PRODUCTION, "ALLOWED_HOSTS": ""})


def test_debug_is_off_unless_asked_for():
    assert settings_under()["DEBUG"] is False
    assert settings_under(DEBUG="true")["DEBUG"] is True


@pytest.mark.parametrize(
    "secret, reason",
    [
        ("dev-only-insecure-key-change-me", "50+ varied characters"),  # the development default
        ("change-me", "50+ varied characters"),  # the old compose default
        ("s" * 60, "50+ varied characters"),
        ("a-long-random-looking-value-but-still-change-me-0123456789", "(it says 'change-me')"),
    ],
)
def test_production_refuses_a_placeholder_secret_key(secret, reason):
    assert reason in refusal(LOAD, **PRODUCTION, SECRET_KEY=secret)


@pytest.mark.parametrize(
    "name, url",
    [
        ("DATABASE_URL", "postgres://imagepipe@postgres:5432/imagepipe"),
        ("REDIS_URL", "redis://redis:6379/0"),
        ("CACHE_URL", "redis://redis:6379/1"),
    ],
)
def test_production_refuses_a_service_without_a_password(name, url):
    said = refusal(LOAD, **PRODUCTION, **{name: url})
    assert f"PRODUCTION needs a password in {name}" in said


@pytest.mark.parametrize(
    "broker, reason",
    [
        ({"KAFKA_SECURITY_PROTOCOL": ""}, "SASL_SSL or SSL, got none (plaintext)"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}, "SASL_SSL or SSL, got SASL_PLAINTEXT"),
        ({"KAFKA_SASL_PASSWORD": ""}, "KAFKA_SECURITY_PROTOCOL=SASL_SSL needs KAFKA_SASL_PASSWORD"),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL"}, "needs KAFKA_SSL_CERTIFICATE_LOCATION, KAFKA_SSL_KEY_LOCATION"),
    ],
)
def test_production_refuses_a_broker_in_clear_or_anonymous(broker, reason):
    assert reason in refusal(LOAD, **{**PRODUCTION, **broker})


def test_production_gives_no_service_or_secret_a_default():
    loaded = settings_under(PRODUCTION="true", ALLOWED_HOSTS="imagepipe.example.org")
    reading_the_secret = [*LOAD[:2], "from django.conf import settings; settings.SECRET_KEY"]
    assert "The SECRET_KEY setting must not be empty" in refusal(reading_the_secret, **PRODUCTION)
    assert loaded["DATABASES"]["default"]["ENGINE"] == "django.db.backends.dummy"  # refuses every query
    assert loaded["CHANNEL_LAYERS"] == {}
    assert loaded["CACHE"] == "django.core.cache.backends.dummy.DummyCache"


def test_production_takes_the_services_it_is_given():
    loaded = settings_under(
        **PRODUCTION,
        SECRET_KEY=SECRET,
        DATABASE_URL="postgres://imagepipe:db-password@postgres:5432/imagepipe",
        REDIS_URL="redis://:redis-password@redis:6379/0",
        CACHE_URL="redis://:redis-password@redis:6379/1",
    )
    assert loaded["DATABASES"]["default"]["PASSWORD"] == "db-password"
    assert (
        loaded["CHANNEL_LAYERS"]["default"]["CONFIG"]["hosts"][0]["address"]
        == "redis://:redis-password@redis:6379/0"
    )
    assert loaded["CACHE"] == "django.core.cache.backends.redis.RedisCache"


WEB = [sys.executable, "-m", "imagepipe.webserver", "-p", "0", "imagepipe.asgi:application"]


@pytest.mark.parametrize(
    "argv, says",
    [
        (WEB, "the web needs SECRET_KEY, DATABASE_URL, REDIS_URL, CACHE_URL, KAFKA_BOOTSTRAP_SERVERS"),
        ([*MANAGE, "runcollector"], "the collector needs DATABASE_URL, REDIS_URL, KAFKA_BOOTSTRAP_SERVERS"),
        ([*MANAGE, "rundispatcher"], "the dispatcher needs DATABASE_URL, REDIS_URL, KAFKA_BOOTSTRAP_SERVERS"),
        ([*MANAGE, "runworker_kafka"], "the worker needs KAFKA_BOOTSTRAP_SERVERS"),
    ],
)
def test_each_role_refuses_to_start_without_what_it_uses(argv, says):
    nothing = {"PRODUCTION": "true", "ALLOWED_HOSTS": "imagepipe.example.org"}
    assert says in refusal(argv, **nothing)


def test_the_web_given_what_it_uses_loads():
    """Guards the test above: the check is the web application's, and passes with what it uses given."""
    done = run(
        [sys.executable, "-c", "import imagepipe.asgi"],
        **PRODUCTION,
        SECRET_KEY=SECRET,
        DATABASE_URL="postgres://imagepipe:db-password@postgres:5432/imagepipe",
        REDIS_URL="redis://:redis-password@redis:6379/0",
        CACHE_URL="redis://:redis-password@redis:6379/1",
    )
    assert done.returncode == 0, done.stderr
