"""Whether a job's watcher may still watch it: asked again while its websocket is open
(``jobs.consumers``), since the account, the session or the job may have changed since connect."""

from __future__ import annotations

import uuid
from importlib import import_module

from django.conf import settings
from django.contrib import auth
from django.http import HttpRequest

from .models import Job

# How a job socket is closed when its access ends (4000-4999 are the application's codes); the
# job page then reloads, to the login page or a 404, instead of reconnecting.
ACCESS_ENDED = 4403  # the account deactivated or deleted, the session logged out, the job not theirs
JOB_GONE = 4404


def ended(user, session_key: str | None, job_id: uuid.UUID) -> int | None:
    """None while ``user`` may still watch the job, else the code to close its socket with."""
    current = _still_logged_in(user, session_key)
    if current is not None and Job.objects.visible_to(current).filter(pk=job_id).exists():
        return None
    return ACCESS_ENDED if current is None or Job.objects.filter(pk=job_id).exists() else JOB_GONE


def _still_logged_in(user, session_key: str | None):
    """The user as the session says now (Django's own check: the session still there and unexpired,
    the account active, the password unchanged since login), or None; the account alone for a
    socket that came without a session."""
    if session_key is None:
        return type(user)._default_manager.filter(pk=user.pk, is_active=True).first()
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    current = auth.get_user(request)
    return current if current.is_authenticated and current.pk == user.pk else None
