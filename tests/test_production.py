"""PRODUCTION=true: `manage.py check --deploy` has nothing to say, and unsafe set-ups refuse to start."""

import os
import subprocess
import sys

from imagepipe.processes import BASE_DIR

SECRET = "p" * 20 + "-production-secret-from-the-environment-0123456789"


def check(**env):
    clean = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS")}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_settings_pass_check_deploy_without_a_warning():
    done = check(PRODUCTION="true", SECRET_KEY=SECRET, ALLOWED_HOSTS="imagepipe.example.org")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


def test_production_refuses_the_development_secret_and_missing_hosts():
    no_secret = check(PRODUCTION="true", ALLOWED_HOSTS="imagepipe.example.org")
    assert no_secret.returncode != 0 and "PRODUCTION needs SECRET_KEY" in no_secret.stderr
    no_hosts = check(PRODUCTION="true", SECRET_KEY=SECRET)
    assert no_hosts.returncode != 0 and "PRODUCTION needs ALLOWED_HOSTS" in no_hosts.stderr
    debug = check(PRODUCTION="true", SECRET_KEY=SECRET, ALLOWED_HOSTS="x.org", DEBUG="true")
    assert debug.returncode != 0 and "DEBUG off" in debug.stderr


def test_development_settings_do_warn():
    """Guards the test above: check --deploy does complain about the local defaults."""
    assert check().returncode != 0
