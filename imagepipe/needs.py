"""What each process must be given, by role, checked as it starts.

In production nothing has a default (imagepipe/settings.py): each role is given only the secrets
it uses, so a worker never holds the database's password or SECRET_KEY. A process missing one of
its own stops at once and names it, rather than failing at its first request or step.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

BROKER = "KAFKA_BOOTSTRAP_SERVERS"  # with its credentials: imagepipe/production.py checks those
# The settings each role reads.
ROLES: dict[str, tuple[str, ...]] = {
    # sessions, rows, websockets, throttles; the broker for /ready/ and the dead letters
    "web": ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "CACHE_URL", BROKER),
    "collector": ("DATABASE_URL", "REDIS_URL", BROKER),  # records tiles, pushes progress
    "dispatcher": ("DATABASE_URL", "REDIS_URL", BROKER),  # claims tiles, pushes their status
    "worker": (BROKER,),  # the broker alone: pixels travel in the task and the result
}


def missing(role: str) -> list[str]:
    return [name for name in ROLES[role] if not given(name)]


def given(name: str) -> bool:
    try:
        return bool(getattr(settings, name))
    except ImproperlyConfigured:  # Django's own answer to reading an empty SECRET_KEY
        return False


def require(role: str, error: type[Exception] = ImproperlyConfigured) -> None:
    absent = missing(role)
    if absent:
        raise error(f"the {role} needs {', '.join(absent)} (PRODUCTION sets no default)")
