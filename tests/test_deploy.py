"""deploy/ and scripts/compose_env.py, the parts of the compose deployment that run outside the
application: each script is run here where this machine can (openssl), or read for what it grants."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from imagepipe import production
from tests.test_compose import COMPOSE, interpolations, secret_names

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def openssl(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *args], input=stdin, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def tls(tmp_path_factory) -> tuple[Path, Path]:
    secrets, ca = tmp_path_factory.mktemp("secrets"), tmp_path_factory.mktemp("ca")
    done = subprocess.run(
        ["sh", str(DEPLOY / "kafka" / "make-tls.sh"), str(secrets), str(ca)], capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return secrets, ca


def test_the_brokers_certificate_is_for_kafka_and_signed_by_the_ca_clients_trust(tls):
    secrets, ca = tls
    password = f"file:{secrets / 'broker.password'}"
    certificate = openssl(
        "pkcs12", "-in", str(secrets / "broker.p12"), "-passin", password, "-nokeys", "-clcerts"
    )
    assert certificate.returncode == 0, certificate.stderr
    verified = openssl(
        "verify", "-CAfile", str(ca / "ca.crt"), "-verify_hostname", "kafka", stdin=certificate.stdout
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    elsewhere = openssl(
        "verify", "-CAfile", str(ca / "ca.crt"), "-verify_hostname", "web", stdin=certificate.stdout
    )
    assert elsewhere.returncode != 0  # good for the broker's name alone


def test_the_ca_key_is_thrown_away_and_the_brokers_key_kept_to_the_broker(tls):
    secrets, ca = tls
    assert sorted(p.name for p in ca.iterdir()) == ["ca.crt"]
    assert sorted(p.name for p in secrets.iterdir()) == ["broker.p12", "broker.password"]
    for name in ("broker.p12", "broker.password"):
        stat = (secrets / name).stat()
        assert (stat.st_mode & 0o777, stat.st_uid) == (0o400, 1000)  # apache/kafka's appuser alone
    assert (ca / "ca.crt").stat().st_mode & 0o777 == 0o444


def test_a_second_run_keeps_the_certificates(tls):
    secrets, ca = tls
    before = (ca / "ca.crt").read_bytes(), (secrets / "broker.p12").read_bytes()
    done = subprocess.run(
        ["sh", str(DEPLOY / "kafka" / "make-tls.sh"), str(secrets), str(ca)], capture_output=True
    )
    assert done.returncode == 0 and b"keeping" in done.stdout
    assert ((ca / "ca.crt").read_bytes(), (secrets / "broker.p12").read_bytes()) == before


def test_the_broker_is_formatted_with_a_user_for_every_role_that_signs_in():
    script = (DEPLOY / "kafka" / "format-storage.sh").read_text()
    (users,) = re.findall(r"^for user in ([a-z ]+); do$", script, re.MULTILINE)
    compose = yaml.safe_load(COMPOSE.read_text())["services"]
    signing_in = {
        s["environment"]["KAFKA_SASL_USERNAME"]
        for s in compose.values()
        if "KAFKA_SASL_USERNAME" in s.get("environment", {})
    }
    assert set(users.split()) == signing_in == {"admin", "dispatcher", "worker", "collector", "web"}
    assert '--add-scram "SCRAM-SHA-512=[name=$user,password=' in script
    assert "ScramLoginModule required;" in (DEPLOY / "kafka" / "kafka_server_jaas.conf").read_text()


def test_the_storage_user_reaches_its_bucket_and_nothing_else():
    script = (DEPLOY / "minio" / "create-bucket.sh").read_text()
    (policy,) = re.findall(r"<<POLICY\n(.*?)\nPOLICY\n", script, re.DOTALL)
    statements = json.loads(policy.replace("$S3_BUCKET", "imagepipe"))["Statement"]
    resources = {r for s in statements for r in s["Resource"]}
    assert resources == {"arn:aws:s3:::imagepipe", "arn:aws:s3:::imagepipe/*"}
    actions = {a for s in statements for a in s["Action"]}
    assert all(a.startswith("s3:") and "*" not in a and "Policy" not in a for a in actions)
    assert {s["Effect"] for s in statements} == {"Allow"}
    assert 'mc anonymous set none "store/$S3_BUCKET"' in script


def test_the_applications_database_role_is_no_superuser():
    script = (DEPLOY / "postgres" / "create-app-user.sh").read_text()
    assert (
        "CREATE ROLE imagepipe LOGIN PASSWORD :'app_password' NOSUPERUSER NOCREATEDB NOCREATEROLE" in script
    )
    assert "CREATE DATABASE imagepipe OWNER imagepipe;" in script


def test_the_proxy_bounds_request_bodies_and_sends_the_rest_on():
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    assert re.search(r"request_body \{\s+max_size \{\$MAX_REQUEST_BYTES\}\s+\}", caddyfile)
    assert "reverse_proxy web:8000" in caddyfile and "reverse_proxy minio:9000" in caddyfile
    assert "header_down Location ^http://minio:9000/ https://{host}/" in caddyfile


def test_the_proxy_and_the_web_server_refuse_the_same_bodies(settings):
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    caddy, web = services["caddy"]["environment"], services["web"]["environment"]
    assert caddy["MAX_REQUEST_BYTES"] == web["MAX_REQUEST_BYTES"]
    ((_, _, upload),) = interpolations(web["MAX_UPLOAD_BYTES"])
    ((_, _, request),) = interpolations(web["MAX_REQUEST_BYTES"])
    assert (int(request), int(upload)) == (settings.MAX_REQUEST_BYTES, settings.MAX_UPLOAD_BYTES)  # defaults


def test_the_generated_env_fills_every_secret_with_one_production_accepts():
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "compose_env.py")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    values = dict(line.split("=", 1) for line in done.stdout.splitlines() if re.match(r"^[A-Z]", line))
    secrets = {name: values[name] for name in secret_names()}
    assert all(re.fullmatch(r"[0-9a-f]{40,64}", value) for value in secrets.values())
    assert len(set(secrets.values())) == len(secrets)  # each its own
    production.check_secret_key(secrets["SECRET_KEY"])
    assert len(secrets["MINIO_ROOT_PASSWORD"]) == len(secrets["S3_SECRET_ACCESS_KEY"]) == 40  # MinIO's most
    assert values["SITE_HOST"] == "localhost"  # the rest as the example has them
