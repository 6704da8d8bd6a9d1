from django.conf import settings
from rest_framework.throttling import UserRateThrottle


class SubmitRateThrottle(UserRateThrottle):
    """Job submissions per user, at JOB_SUBMIT_RATE (read when checked, so tests can change it)."""

    scope = "submit"

    def get_rate(self):
        return settings.JOB_SUBMIT_RATE
