"""manage.py ensure_demo_user: the demo login run.sh prints, not staff, with a password generated
once and kept in a file only its owner reads."""

from __future__ import annotations

import io
import stat

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def var_dir(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.VAR_DIR = tmp_path
    return tmp_path


def ensure(*args: str) -> str:
    out = io.StringIO()
    call_command("ensure_demo_user", *args, stdout=out)
    return out.getvalue().strip()


def printed_password(line: str) -> str:
    return line.split(" / ", 1)[1].split()[0]


def test_the_demo_user_is_created_not_staff_with_a_random_password_kept_for_its_owner(var_dir):
    line = ensure()
    password = printed_password(line)
    assert line == f"demo / {password}  (created user, not staff)"
    assert len(password) >= 16
    user = authenticate(username="demo", password=password)
    assert user is not None and not user.is_staff and not user.is_superuser
    kept = var_dir / "demo-password"
    assert kept.read_text() == f"{password}\n"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600


def test_each_run_prints_the_same_login_and_leaves_the_password_as_it_is(var_dir):
    password = printed_password(ensure())
    hashed = get_user_model().objects.get(username="demo").password
    assert ensure() == f"demo / {password}  (existing user, not staff)"
    assert get_user_model().objects.get(username="demo").password == hashed  # sessions and tokens live on


def test_another_checkout_gets_another_password(var_dir, tmp_path_factory, settings):
    first = printed_password(ensure())
    settings.VAR_DIR = tmp_path_factory.mktemp("elsewhere")
    assert printed_password(ensure("--username", "demo2")) != first


def test_a_changed_password_is_set_back_to_the_one_printed(var_dir):
    password = printed_password(ensure())
    user = get_user_model().objects.get(username="demo")
    user.set_password("changed in the admin")
    user.save()
    ensure()
    assert authenticate(username="demo", password=password) is not None


def test_a_kept_file_that_others_could_read_is_made_private(var_dir):
    kept = var_dir / "demo-password"
    kept.write_text("")  # empty: a password is generated and written to it
    kept.chmod(0o644)
    ensure()
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600


def test_staff_only_when_asked_and_no_longer_when_not(var_dir):
    assert ensure("--staff").endswith("(created user, staff and superuser)")
    assert get_user_model().objects.get(username="demo").is_superuser
    ensure()
    user = get_user_model().objects.get(username="demo")
    assert not user.is_staff and not user.is_superuser


def test_a_given_password_is_set_and_not_kept(var_dir):
    assert ensure("--username", "bench", "--password", "bench-pass") == (
        "bench / bench-pass  (created user, not staff)"
    )
    assert authenticate(username="bench", password="bench-pass") is not None
    assert not (var_dir / "demo-password").exists()
