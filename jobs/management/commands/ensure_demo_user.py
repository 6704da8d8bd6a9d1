"""The demo login that scripts/run.sh prints: a user who is not staff, with a random password.

The password is generated once and kept in a file only its owner may read (``--password-file``,
by default ``$IMAGEPIPE_VAR/demo-password``), so each run prints the same login and the demo
user's sessions and API tokens survive a restart; a password reset every run would revoke them.
The login printed always works: a user whose password is no longer the file's gets it back.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


def read_password(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def write_password(path: Path, password: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        os.fchmod(file.fileno(), 0o600)  # a file that was there keeps the mode it had otherwise
        file.write(password + "\n")


class Command(BaseCommand):
    help = "Create the demo user (not staff unless --staff) and print its login."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", help="this password instead of the generated one (not kept)")
        parser.add_argument("--staff", action="store_true", help="make the user staff and superuser")
        parser.add_argument(
            "--password-file",
            type=Path,
            default=None,
            help="where the generated password is kept (default: $IMAGEPIPE_VAR/demo-password)",
        )

    def handle(self, *args, username, password, staff, password_file, **options):
        if password is None:
            path = password_file or settings.VAR_DIR / "demo-password"
            password = read_password(path)
            if password is None:
                password = secrets.token_urlsafe(12)
                write_password(path, password)
        user, created = get_user_model().objects.get_or_create(username=username)
        if created or not user.check_password(password):
            user.set_password(password)
        # Every run makes the user what it asks for: an earlier --staff run's rights go without it.
        user.is_staff = user.is_superuser = staff
        user.is_active = True
        user.save()
        role = "staff and superuser" if staff else "not staff"
        self.stdout.write(f"{username} / {password}  ({'created' if created else 'existing'} user, {role})")
