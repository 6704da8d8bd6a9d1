"""A username's wrong passwords from one address, and the API's tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare


def digest(text: str) -> str:
    # surrogatepass: a username posted as JSON may hold a lone surrogate, which UTF-8 can't encode.
    return hashlib.sha256(text.encode(errors="surrogatepass")).hexdigest()


def storable(text: str, length: int) -> str:
    """``text`` cut to ``length``, as Postgres can store it (no NUL, no lone surrogate): for display."""
    return text[:length].replace("\x00", "\ufffd").encode(errors="replace").decode()


def lockout_delay(failures: int) -> timedelta:
    """Nothing before LOGIN_FAILURES_PER_ACCOUNT failures; then LOGIN_LOCKOUT_SECONDS, doubled with
    each further failure, at most LOGIN_LOCKOUT_MAX_SECONDS."""
    beyond = failures - settings.LOGIN_FAILURES_PER_ACCOUNT
    if beyond < 0:
        return timedelta(0)
    doubled = settings.LOGIN_LOCKOUT_SECONDS * 2 ** min(beyond, 64)  # past 2**64 only the cap is left
    return timedelta(seconds=min(doubled, settings.LOGIN_LOCKOUT_MAX_SECONDS))


class LoginFailuresQuerySet(models.QuerySet):
    def of(self, username: str, address: str | None) -> LoginFailuresQuerySet:
        return self.filter(key=LoginFailures.key_of(username, address))

    def locked(self) -> LoginFailuresQuerySet:
        return self.filter(until__gt=timezone.now())

    def forgotten(self) -> LoginFailuresQuerySet:
        """Pairs a window past their last failure, or past the end of their lockout."""
        return self.filter(until__lte=timezone.now() - failure_window())


def failure_window() -> timedelta:
    return timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)


class LoginFailures(models.Model):
    """One username's wrong passwords from one client address.

    From LOGIN_FAILURES_PER_ACCOUNT of them on, the pair is locked out until ``until``, for a delay
    that doubles with each further failure (``lockout_delay``). A pair that fails no more for
    LOGIN_FAILURE_WINDOW_SECONDS after its last failure, or after its lockout ends, is forgotten.
    """

    # The pair's digest: a username may be of any length, and the unique index must hold it.
    key = models.CharField(max_length=64, unique=True)
    username = models.CharField(max_length=150)  # as given, case-folded, cut to a username's length
    address = models.CharField(max_length=64, blank=True)  # empty: no address known
    failures = models.PositiveIntegerField(default=0)
    # Locked while in the future; when not locked, the last failure's time.
    until = models.DateTimeField(db_index=True)

    objects = LoginFailuresQuerySet.as_manager()

    class Meta:
        verbose_name = "locked-out login"
        verbose_name_plural = "locked-out logins"

    def __str__(self) -> str:
        return f"{self.username} from {self.address or 'an unknown address'}"

    @staticmethod
    def key_of(username: str, address: str | None) -> str:
        # The address first: it holds no newline, so no other pair joins to the same text.
        return digest(f"{address or ''}\n{username.casefold()}")

    @classmethod
    def record(cls, username: str, address: str | None) -> None:
        """One more wrong password for the username from the address."""
        # Rows left by guessers go once forgotten, whoever's failure next passes by; apart from
        # the transaction below, which then locks the one row it counts on.
        cls.objects.forgotten().delete()
        now = timezone.now()
        with transaction.atomic():
            # Locked, so that concurrent wrong guesses are each counted.
            failures, _ = cls.objects.select_for_update().get_or_create(
                key=cls.key_of(username, address),
                defaults={
                    "username": storable(username.casefold(), 150),
                    "address": storable(address or "", 64),
                    "until": now,
                },
            )
            failures.fail(now)

    def fail(self, now: datetime) -> None:
        if self.until + failure_window() <= now:  # forgotten, not yet deleted
            self.failures = 0
        self.failures += 1
        self.until = now + lockout_delay(self.failures)
        self.save(update_fields=["failures", "until"])


def token_lifetime() -> timedelta:
    return timedelta(hours=settings.API_TOKEN_TTL_HOURS)


class ApiTokenQuerySet(models.QuerySet):
    def expired(self) -> ApiTokenQuerySet:
        return self.filter(created__lte=timezone.now() - token_lifetime())


class ApiToken(models.Model):
    """A key the API takes as ``Authorization: Token <key>``, for API_TOKEN_TTL_HOURS from its
    issue, while its user is active and keeps the password they had then."""

    # SHA-256 of the key: only its holder has the key, and the database alone lets nobody in.
    digest = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    created = models.DateTimeField(default=timezone.now)
    # The user's session hash when issued (an HMAC of their password hash): Django logs a session
    # out by it when the password changes, and a token is revoked by the same rule.
    password_hash = models.CharField(max_length=128)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.user}'s token of {self.created:%Y-%m-%d %H:%M}"

    @classmethod
    def issue(cls, user) -> tuple[ApiToken, str]:
        """A new token for ``user`` and its key, which is shown this once and never stored."""
        cls.objects.filter(user=user).expired().delete()
        key = secrets.token_hex(20)
        token = cls.objects.create(digest=digest(key), user=user, password_hash=user.get_session_auth_hash())
        return token, key

    @classmethod
    def presented(cls, key: str) -> ApiToken | None:
        return cls.objects.select_related("user").filter(digest=digest(key)).first()

    @property
    def expires(self) -> datetime:
        return self.created + token_lifetime()

    def refusal(self) -> str | None:
        """Why this token no longer lets its user in, or None while it does."""
        if self.expires <= timezone.now():
            return "Token expired: POST your username and password to /api/auth/token/ for a new one."
        if not self.user.is_active:
            return "Token revoked: the account is deactivated."
        if not constant_time_compare(self.password_hash, self.user.get_session_auth_hash()):
            return "Token revoked: the account's password has changed."
        return None
