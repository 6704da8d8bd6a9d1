"""Logging in as the three endpoints are used, reading what they answered; tokens."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import F
from django.test import Client
from rest_framework.test import APIClient

from imagepipe.logins.models import LoginFailures

PASSWORD = "staff-pass"  # the `staff` fixture's: staff, so that the admin login accepts it too
ENDPOINTS = ["/api/auth/token/", "/accounts/login/", "/admin/login/"]


def login(endpoint: str, username: str, password: str, address: str = "10.0.0.1"):
    client = APIClient() if endpoint.startswith("/api/") else Client()
    return client.post(endpoint, {"username": username, "password": password}, REMOTE_ADDR=address)


def outcome(endpoint: str, response) -> str:
    """accepted, wrong (a bad password) or refused (locked out), from the endpoint's answer."""
    if endpoint.startswith("/api/"):
        return {200: "accepted", 400: "wrong", 429: "refused"}[response.status_code]
    if response.status_code == 302:
        return "accepted"
    assert response.status_code == 200
    (error,) = response.context["form"].non_field_errors().as_data()
    return {"invalid_login": "wrong", "throttled": "refused"}[error.code]


def token_for(username: str) -> str:
    """A new API token for a user of tests/conftest.py's, whose password is ``<username>-pass``."""
    response = APIClient().post("/api/auth/token/", {"username": username, "password": f"{username}-pass"})
    assert response.status_code == 200, response.content
    return response.json()["token"]


def with_token(key: str) -> APIClient:
    return APIClient(HTTP_AUTHORIZATION=f"Token {key}")


def jobs_with(key: str):
    return with_token(key).get("/api/jobs/")


def time_passes(seconds: float) -> None:
    """Every locked-out login's wait, and the time since its last failure, as ``seconds`` later."""
    LoginFailures.objects.update(until=F("until") - timedelta(seconds=seconds))
