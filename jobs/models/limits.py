"""What staff allow one user instead of the defaults: the quotas (``jobs.quotas``) and priority high."""

from __future__ import annotations

from django.conf import settings
from django.db import models

QUOTAS = ("unfinished_jobs", "queued_megapixels", "stored_mb")  # each a QUOTA_<NAME> setting too


class UserLimits(models.Model):
    """A limit left empty is the setting's (QUOTA_<NAME>); 0 is no limit. Staff have no limits."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="limits"
    )
    unfinished_jobs = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="jobs not yet done, failed or cancelled (empty: QUOTA_UNFINISHED_JOBS)",
    )
    queued_megapixels = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="input pixels of those jobs together, in millions (empty: QUOTA_QUEUED_MEGAPIXELS)",
    )
    stored_mb = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="MB (2**20 bytes) the user's jobs hold in storage: originals, tiles, results, previews "
        "(empty: QUOTA_STORED_MB)",
    )
    high_priority = models.BooleanField(
        default=False,
        help_text="may submit at priority high, or raise a job to it, as staff may (it goes before "
        "fairness between users)",
    )

    class Meta:
        verbose_name = verbose_name_plural = "user limits"

    def __str__(self) -> str:
        return f"limits of {self.user}"

    @classmethod
    def of(cls, user) -> UserLimits:
        """The user's limits: those staff set, or the defaults."""
        # By id: an unsaved default would otherwise be cached on the user as theirs.
        return cls.objects.filter(user=user).first() or cls(user_id=user.pk)

    def limit(self, quota: str) -> int:
        """The limit on ``quota`` (one of QUOTAS) for this user; 0 for none."""
        own = getattr(self, quota)
        return getattr(settings, f"QUOTA_{quota.upper()}") if own is None else own

    @staticmethod
    def may_ask_high(user) -> bool:
        """Staff, and the users staff allowed it."""
        return user.is_staff or UserLimits.objects.filter(user=user, high_priority=True).exists()
