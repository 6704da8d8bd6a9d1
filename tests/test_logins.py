"""Wrong passwords are throttled per account and per address on every login endpoint (imagepipe.logins)."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from imagepipe.logins import account_count

pytestmark = pytest.mark.django_db

PASSWORD = "right-password"
ENDPOINTS = ["/api/auth/token/", "/accounts/login/", "/admin/login/"]
REFUSED = "Too many failed logins"


@pytest.fixture(autouse=True)
def limits(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast guesses
    settings.LOGIN_FAILURES_PER_ACCOUNT = 5
    settings.LOGIN_FAILURES_PER_ADDRESS = 20
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 900
    cache.clear()  # counts outlive the test database's rows: start every test from none


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password=PASSWORD, is_staff=True)


def login(endpoint: str, username: str, password: str, address: str = "10.0.0.1"):
    client = APIClient() if endpoint.startswith("/api/") else Client()
    return client.post(endpoint, {"username": username, "password": password}, REMOTE_ADDR=address)


def outcome(endpoint: str, response) -> str:
    """accepted, wrong (a bad password) or refused (throttled), from the endpoint's answer."""
    if endpoint.startswith("/api/"):
        return {200: "accepted", 400: "wrong", 429: "refused"}[response.status_code]
    if response.status_code == 302:
        return "accepted"
    assert response.status_code == 200
    (error,) = response.context["form"].non_field_errors().as_data()
    return {"invalid_login": "wrong", "throttled": "refused"}[error.code]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_an_account_is_refused_after_five_wrong_passwords_even_with_the_right_one(endpoint, alice):
    assert [outcome(endpoint, login(endpoint, "alice", "guess")) for _ in range(5)] == ["wrong"] * 5
    assert outcome(endpoint, login(endpoint, "alice", PASSWORD)) == "refused"
    assert outcome(endpoint, login(endpoint, "alice", PASSWORD, address="10.0.0.2")) == "refused"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_an_address_is_refused_after_twenty_wrong_passwords_for_any_accounts(endpoint, alice):
    guesses = [login(endpoint, f"user{n}", "guess", address="10.0.0.9") for n in range(20)]
    assert {outcome(endpoint, response) for response in guesses} == {"wrong"}
    assert outcome(endpoint, login(endpoint, "alice", PASSWORD, address="10.0.0.9")) == "refused"
    assert outcome(endpoint, login(endpoint, "alice", PASSWORD, address="10.0.0.10")) == "accepted"


def test_the_token_endpoint_answers_429_with_retry_after_and_a_json_error(alice):
    for _ in range(5):
        assert login("/api/auth/token/", "alice", "guess").status_code == 400
    response = login("/api/auth/token/", "alice", PASSWORD)
    assert response.status_code == 429
    assert 890 <= int(response["Retry-After"]) <= 900
    assert response.json()["error"].startswith("Too many failed logins. Expected available in ")


@pytest.mark.parametrize("endpoint", ["/accounts/login/", "/admin/login/"])
def test_the_login_forms_say_why_and_log_nobody_in(endpoint, alice):
    client = Client(REMOTE_ADDR="10.0.0.1")
    for _ in range(5):
        client.post(endpoint, {"username": "alice", "password": "guess"})
    response = client.post(endpoint, {"username": "alice", "password": PASSWORD})
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [f"{REFUSED}. Try again in 15 minutes."]
    assert "_auth_user_id" not in client.session


def test_wrong_passwords_count_across_the_endpoints_and_the_usernames_case(alice):
    for endpoint in ENDPOINTS:
        login(endpoint, "alice", "guess")
    login("/admin/login/", "ALICE", "guess")
    login("/api/auth/token/", "Alice", "guess")
    assert outcome("/accounts/login/", login("/accounts/login/", "alice", PASSWORD)) == "refused"


def test_the_right_password_clears_the_accounts_count(alice):
    for _ in range(2):
        for _ in range(4):
            assert login("/api/auth/token/", "alice", "guess").status_code == 400
        assert login("/api/auth/token/", "alice", PASSWORD).status_code == 200


def test_the_right_password_leaves_the_address_count_as_it_is(alice):
    for n in range(19):
        login("/api/auth/token/", f"user{n}", "guess", address="10.0.0.9")
    assert login("/api/auth/token/", "alice", PASSWORD, address="10.0.0.9").status_code == 200
    login("/api/auth/token/", "user19", "guess", address="10.0.0.9")
    assert login("/api/auth/token/", "alice", PASSWORD, address="10.0.0.9").status_code == 429


def test_logins_are_accepted_again_once_the_window_has_passed(settings, alice):
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 2
    for _ in range(5):
        login("/api/auth/token/", "alice", "guess")
    refused = login("/api/auth/token/", "alice", PASSWORD)
    assert refused.status_code == 429 and refused["Retry-After"] in ("1", "2")
    count, deadline = account_count("alice"), time.monotonic() + 10
    while count.exceeded() and time.monotonic() < deadline:  # the window closes as the cache expires it
        time.sleep(0.05)
    assert login("/api/auth/token/", "alice", PASSWORD).status_code == 200
