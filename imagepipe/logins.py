"""Wrong passwords are throttled per account from an address, and per address, on every login.

The admin's login, ``/accounts/login/`` and DRF's ``/api/auth/token/`` all check passwords
through ``django.contrib.auth.authenticate``, which asks this backend: one place covers the three.
Failures are counted in the shared cache, so every web process counts together. Past
``LOGIN_FAILURES_PER_ACCOUNT`` for a username from one address, or ``LOGIN_FAILURES_PER_ADDRESS``
for an address (whatever the usernames), within ``LOGIN_FAILURE_WINDOW_SECONDS`` of the first
failure, every attempt there is refused, the right password too, until the window has passed.
An account's count is its count from that address: whoever guesses at a username keeps only
themselves out, never the account's owner logging in from elsewhere.

The address is the connection's, or, from a proxy listed in ``TRUSTED_PROXIES``, the nearest
address in ``X-Forwarded-For`` that is not one of those proxies: the entries a client writes
itself stand to the left of what its proxies added, and are never believed.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from rest_framework.exceptions import Throttled
from rest_framework.request import Request


@dataclass(frozen=True)
class FailureCount:
    """Wrong passwords for one account or one address, in a window opened by the first."""

    key: str
    limit: int

    @property
    def closes_key(self) -> str:
        return f"{self.key}:closes"

    def exceeded(self) -> bool:
        return cache.get(self.key, 0) >= self.limit

    def seconds_left(self) -> int:
        closes = cache.get(self.closes_key)
        window = settings.LOGIN_FAILURE_WINDOW_SECONDS
        return window if closes is None else max(1, math.ceil(closes - time.time()))

    def record(self) -> None:
        window = settings.LOGIN_FAILURE_WINDOW_SECONDS
        # add() and incr() are atomic in the cache, so concurrent guesses are all counted.
        if cache.add(self.key, 1, timeout=window):
            cache.set(self.closes_key, time.time() + window, timeout=window)
            return
        try:
            cache.incr(self.key)
        except ValueError:  # the window closed between add() and incr(): this failure opens the next
            cache.add(self.key, 1, timeout=window)
            cache.set(self.closes_key, time.time() + window, timeout=window)

    def clear(self) -> None:
        cache.delete_many([self.key, self.closes_key])


def account_count(username: str, address: str | None) -> FailureCount:
    """A username's failures from one address (or from nowhere known, together)."""
    # Hashed: a username may hold anything, keys may not; case-folded so "Alice" counts as "alice".
    digest = hashlib.sha256(username.casefold().encode(errors="surrogatepass")).hexdigest()
    return FailureCount(
        f"login-failures:account:{digest}:{address or '-'}", settings.LOGIN_FAILURES_PER_ACCOUNT
    )


def address_count(address: str | None) -> FailureCount | None:
    if not address:
        return None
    return FailureCount(f"login-failures:address:{address}", settings.LOGIN_FAILURES_PER_ADDRESS)


def client_address(request: HttpRequest | Request | None) -> str | None:
    """The client's address: the connection's, unless that is a trusted proxy, whose
    ``X-Forwarded-For`` is read from the right, past the proxies, to the first it did not add."""
    if request is None:
        return None
    address = request.META.get("REMOTE_ADDR") or None
    trusted = set(settings.TRUSTED_PROXIES)
    if address not in trusted:
        return address
    forwarded = [
        hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()
    ]
    for hop in reversed(forwarded):
        if hop not in trusted:
            return hop
    return address


def refusal(request: HttpRequest | Request | None, seconds: int) -> Exception:
    """What stops a throttled login, in the form its caller turns into a clear answer.

    Django's login forms show a ValidationError raised while they clean as their error; DRF's
    token serializer would turn that into a 400, while Throttled passes through it to the view,
    which answers 429 with Retry-After (and adds "Expected available in N seconds.").
    """
    if isinstance(request, Request):
        return Throttled(wait=seconds, detail="Too many failed logins.")
    minutes = math.ceil(seconds / 60)
    return ValidationError(
        f"Too many failed logins. Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
        code="throttled",
    )


class ThrottledModelBackend(ModelBackend):
    """Django's username and password check, refused past the failure limits."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        client = client_address(request)
        account = account_count(username, client) if username is not None else None
        address = address_count(client)
        counts = [count for count in (account, address) if count is not None]
        exceeded = [count for count in counts if count.exceeded()]
        if exceeded:
            raise refusal(request, max(count.seconds_left() for count in exceeded))
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            for count in counts:
                count.record()
        elif account is not None:
            # Only the account's count: were a success to clear the address's too, a guesser
            # could reset it by logging into an account of their own between guesses.
            account.clear()
        return user
