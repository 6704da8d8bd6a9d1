"""Who sent a message: an HMAC-SHA256 in its record headers, over its kind, key and whole value.

Two keys, one per direction, so each role holds only what it must:

* ``TASK_SIGNING_KEY``: the dispatcher signs tasks and cancellations, the workers check them;
* ``RESULT_SIGNING_KEY``: the workers sign results and heartbeats, the collector checks them.

The broker's ACLs already say who may write each topic; the signature says the bytes came from a
holder of the key, unaltered (the pixels are in the value, so they are covered too). Whether a
signed result answers the task sent last for its tile is the collector's question: the task's
nonce, stored on the tile row, must come back in it (``pipeline.collector``).

Outside production a missing key is derived from ``SECRET_KEY``, so one machine runs with no
set-up; in production a role whose key is unset refuses to start (``require_keys``).
"""

from __future__ import annotations

import hashlib
import hmac

from confluent_kafka import Message
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

HEADER = "ipm-mac"
TASK, CANCELLATION, RESULT, HEARTBEAT = "task", "cancellation", "result", "heartbeat"
_SETTING = {TASK: "TASK_SIGNING_KEY", CANCELLATION: "TASK_SIGNING_KEY"}
_SETTING |= {RESULT: "RESULT_SIGNING_KEY", HEARTBEAT: "RESULT_SIGNING_KEY"}

Headers = list[tuple[str, str | bytes | None]]


class Unsigned(ValueError):
    """A message with no signature, or one its key did not make."""


def _key(kind: str) -> bytes:
    name = _SETTING[kind]
    configured: str = getattr(settings, name)
    if configured:
        return configured.encode()
    if settings.PRODUCTION:
        raise ImproperlyConfigured(f"{name} is not set: this role signs or checks {kind} messages")
    return hashlib.sha256(f"imagepipe-{name}:{settings.SECRET_KEY}".encode()).digest()


def require_keys(*kinds: str) -> None:
    """Fail now, not at the first message, if this role lacks a key it needs."""
    for kind in kinds:
        _key(kind)


def _mac(kind: str, key: str | bytes | None, value: bytes | None) -> bytes:
    encoded = key.encode() if isinstance(key, str) else key or b""
    head = b"\0".join([kind.encode(), len(encoded).to_bytes(4, "big") + encoded, b""])
    mac = hmac.new(_key(kind), head, hashlib.sha256)
    mac.update(value or b"")  # the value, megabytes of pixels, is not copied to be joined
    return mac.digest()


def sign(kind: str, key: str | bytes | None, value: bytes | None) -> Headers:
    """The headers a message of ``kind`` is produced with."""
    return [(HEADER, _mac(kind, key, value))]


def check(kind: str, message: Message) -> None:
    """Unsigned unless the consumed message carries exactly one signature, and it is this kind's."""
    headers = message.headers() or []
    pairs = headers.items() if isinstance(headers, dict) else headers
    found = [mac for name, mac in pairs if name == HEADER]
    if len(found) != 1 or not isinstance(found[0], bytes):
        raise Unsigned(f"the {kind} carries no signature" if not found else f"the {kind} is signed twice")
    if not hmac.compare_digest(found[0], _mac(kind, message.key(), message.value())):
        raise Unsigned(f"the {kind}'s signature does not match: not signed with its key, or altered")
