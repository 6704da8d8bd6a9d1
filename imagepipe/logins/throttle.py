"""Wrong passwords lock a username out from an address, with back-off, and cap an address.

The admin's login, ``/accounts/login/`` and ``/api/auth/token/`` all check passwords through
``django.contrib.auth.authenticate``, which asks this backend: one place covers the three.

* **A username from an address** (``LoginFailures``, a row in the database, which staff can list
  and unlock in the admin): after LOGIN_FAILURES_PER_ACCOUNT wrong passwords the pair waits
  LOGIN_LOCKOUT_SECONDS, then twice as long after each further one, up to LOGIN_LOCKOUT_MAX_SECONDS.
  While it waits every attempt is refused, the right password too, with the time left; once the
  wait is over the right password is accepted again, and clears the pair. Never for ever: a pair
  gets one guess per wait at most, and the wait has a cap. An account's count is its count from
  that address: whoever guesses at a username keeps only themselves out, never its owner
  logging in from elsewhere.
* **An address, whatever the usernames** (counted in the shared cache): past
  LOGIN_FAILURES_PER_ADDRESS wrong passwords within LOGIN_FAILURE_WINDOW_SECONDS of the first,
  every login from there is refused until the window has passed. A correct login leaves it as it
  is: otherwise a guesser could reset it by logging into an account of their own between guesses.

The address is the connection's, or, from a proxy listed in ``TRUSTED_PROXIES``, the nearest
address in ``X-Forwarded-For`` that is not one of those proxies: the entries a client writes
itself stand to the left of what its proxies added, and are never believed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.exceptions import Throttled
from rest_framework.request import Request

from .models import LoginFailures


@dataclass(frozen=True)
class AddressCount:
    """Wrong passwords from one address, in a window opened by the first."""

    key: str

    @property
    def closes_key(self) -> str:
        return f"{self.key}:closes"

    def exceeded(self) -> bool:
        return cache.get(self.key, 0) >= settings.LOGIN_FAILURES_PER_ADDRESS

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


def address_count(address: str | None) -> AddressCount | None:
    if not address:
        return None
    return AddressCount(f"login-failures:address:{address}")


def seconds_locked(username: str, address: str | None) -> int:
    """How long the username must still wait from this address; 0 when it may try."""
    until = LoginFailures.objects.of(username, address).locked().values_list("until", flat=True).first()
    return 0 if until is None else max(1, math.ceil((until - timezone.now()).total_seconds()))


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


def in_words(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def refusal(request: HttpRequest | Request | None, seconds: int) -> Exception:
    """What stops a refused login, in the form its caller turns into a clear answer.

    Django's login forms show a ValidationError raised while they clean as their error; DRF's
    token serializer would turn that into a 400, while Throttled passes through it to the view,
    which answers 429 with Retry-After (and adds "Expected available in N seconds.").
    """
    if isinstance(request, Request):
        return Throttled(wait=seconds, detail="Too many failed logins.")
    return ValidationError(f"Too many failed logins. Try again in {in_words(seconds)}.", code="throttled")


class ThrottledModelBackend(ModelBackend):
    """Django's username and password check, refused while locked out or past the address's cap."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        client = client_address(request)
        address = address_count(client)
        waits = [seconds_locked(username, client) if username is not None else 0]
        if address is not None and address.exceeded():
            waits.append(address.seconds_left())
        if max(waits) > 0:
            raise refusal(request, max(waits))
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            if address is not None:
                address.record()
            if username is not None:
                LoginFailures.record(username, client)
        elif username is not None:
            LoginFailures.objects.of(username, client).delete()
        return user
