"""Per-user quotas, checked as a job is submitted: unfinished jobs, the input pixels they queue,
and the bytes a user's jobs hold in storage. The defaults are the QUOTA_* settings; staff set one
user's own in ``UserLimits``; staff themselves have none. A job that would go past one is refused
with ``QuotaExceeded`` (403) before anything is stored or written."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from django.db.models import BigIntegerField, Count, F, Q, Sum
from django.db.models.functions import Cast

from .models import Job, UserLimits
from .submission import SubmissionError

MEGAPIXEL = 1_000_000
MB = 1024 * 1024
# The namespace of the per-user submission locks (two-key advisory locks: the user's id is the key).
QUOTA_LOCKS = 0x494D_5051  # "IMPQ"
UNFINISHED = ~Q(status__in=Job.TERMINAL)


@dataclass(frozen=True)
class Quota:
    name: str  # as UserLimits and the QUOTA_<NAME> setting name it
    what: str  # what it counts, for people
    unit: str
    limit: int  # 0: none
    used: float  # before the job
    adds: float  # the job's own

    @property
    def exceeded(self) -> bool:
        return bool(self.limit) and self.used + self.adds > self.limit


class QuotaExceeded(SubmissionError):
    def __init__(self, quota: Quota):
        super().__init__(
            f"quota {quota.name} exceeded: this job would take your {quota.what} to "
            f"{_amount(quota.used + quota.adds)} {quota.unit}, over your limit of {quota.limit} "
            f"({_amount(quota.used)} in use now); {ADVICE[quota.name]}",
            status=403,
        )
        self.details = {
            "code": "quota_exceeded",
            "limit": quota.name,
            "value": quota.limit,
            "used": quota.used,
        }


ADVICE = {
    "unfinished_jobs": "wait for one to end, or cancel one",
    "queued_megapixels": "wait for your jobs to end, or cancel one",
    "stored_mb": "delete jobs you no longer need",
}


def _amount(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.2f}"


def quotas(user, job: Job) -> list[Quota]:
    """The user's quotas with their use now (one query over the user's jobs) and what ``job`` adds."""
    limits = UserLimits.of(user)
    use = Job.objects.filter(owner=user).aggregate(
        unfinished=Count("pk", filter=UNFINISHED),
        pixels=Sum(Cast("width", BigIntegerField()) * F("height"), filter=UNFINISHED),
        stored=Sum("stored_bytes"),
    )
    return [
        Quota(
            "unfinished_jobs",
            "unfinished jobs",
            "jobs",
            limits.limit("unfinished_jobs"),
            use["unfinished"],
            1,
        ),
        Quota(
            "queued_megapixels",
            "unfinished jobs' input pixels",
            "megapixels",
            limits.limit("queued_megapixels"),
            round((use["pixels"] or 0) / MEGAPIXEL, 2),
            job.width * job.height / MEGAPIXEL,
        ),
        Quota(
            "stored_mb",
            "stored files",
            "MB",
            limits.limit("stored_mb"),
            round((use["stored"] or 0) / MB, 2),
            job.stored_bytes / MB,
        ),
    ]


def check(user, job: Job, lock: bool = False) -> None:
    """Refuse ``job`` (``QuotaExceeded``) if it would take ``user`` past a quota; staff have none.

    ``lock``: first wait for the user's other submissions in their transactions (the caller's is
    held until it commits), so that two at once can't each fit beside the other and both pass."""
    if user.is_staff:
        return
    if lock:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [QUOTA_LOCKS, user.pk])
    for quota in quotas(user, job):
        if quota.exceeded:
            raise QuotaExceeded(quota)
