"""Wrong passwords are throttled per account from an address, and per address, on every login
endpoint (imagepipe.logins); a forwarded address is believed only from a trusted proxy."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from imagepipe.logins import account_count

pytestmark = pytest.mark.django_db

PASSWORD = "staff-pass"  # the `staff` fixture's: staff, so that the admin login accepts it too
ENDPOINTS = ["/api/auth/token/", "/accounts/login/", "/admin/login/"]
REFUSED = "Too many failed logins"


@pytest.fixture(autouse=True)
def limits(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast guesses
    settings.LOGIN_FAILURES_PER_ACCOUNT = 5
    settings.LOGIN_FAILURES_PER_ADDRESS = 20
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 900
    cache.clear()  # counts outlive the test database's rows: start every test from none


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
def test_an_account_is_refused_from_an_address_after_five_wrong_passwords_but_not_elsewhere(endpoint, staff):
    assert [outcome(endpoint, login(endpoint, "staff", "guess")) for _ in range(5)] == ["wrong"] * 5
    assert outcome(endpoint, login(endpoint, "staff", PASSWORD)) == "refused"
    # Whoever guessed at the username kept only themselves out: its owner, elsewhere, logs in.
    assert outcome(endpoint, login(endpoint, "staff", PASSWORD, address="10.0.0.2")) == "accepted"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_an_address_is_refused_after_twenty_wrong_passwords_for_any_accounts(endpoint, staff):
    guesses = [login(endpoint, f"user{n}", "guess", address="10.0.0.9") for n in range(20)]
    assert {outcome(endpoint, response) for response in guesses} == {"wrong"}
    assert outcome(endpoint, login(endpoint, "staff", PASSWORD, address="10.0.0.9")) == "refused"
    assert outcome(endpoint, login(endpoint, "staff", PASSWORD, address="10.0.0.10")) == "accepted"


def test_the_token_endpoint_answers_429_with_retry_after_and_a_json_error(staff):
    for _ in range(5):
        assert login("/api/auth/token/", "staff", "guess").status_code == 400
    response = login("/api/auth/token/", "staff", PASSWORD)
    assert response.status_code == 429
    assert 890 <= int(response["Retry-After"]) <= 900
    assert response.json()["error"].startswith("Too many failed logins. Expected available in ")


@pytest.mark.parametrize("endpoint", ["/accounts/login/", "/admin/login/"])
def test_the_login_forms_say_why_and_log_nobody_in(endpoint, staff):
    client = Client(REMOTE_ADDR="10.0.0.1")
    for _ in range(5):
        client.post(endpoint, {"username": "staff", "password": "guess"})
    response = client.post(endpoint, {"username": "staff", "password": PASSWORD})
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [f"{REFUSED}. Try again in 15 minutes."]
    assert "_auth_user_id" not in client.session


def test_wrong_passwords_count_across_the_endpoints_and_the_usernames_case(staff):
    for endpoint in ENDPOINTS:
        login(endpoint, "staff", "guess")
    login("/admin/login/", "STAFF", "guess")
    login("/api/auth/token/", "Staff", "guess")
    assert outcome("/accounts/login/", login("/accounts/login/", "staff", PASSWORD)) == "refused"


def test_the_right_password_clears_the_accounts_count(staff):
    for _ in range(2):
        for _ in range(4):
            assert login("/api/auth/token/", "staff", "guess").status_code == 400
        assert login("/api/auth/token/", "staff", PASSWORD).status_code == 200


def test_the_right_password_leaves_the_address_count_as_it_is(staff):
    for n in range(19):
        login("/api/auth/token/", f"user{n}", "guess", address="10.0.0.9")
    assert login("/api/auth/token/", "staff", PASSWORD, address="10.0.0.9").status_code == 200
    login("/api/auth/token/", "user19", "guess", address="10.0.0.9")
    assert login("/api/auth/token/", "staff", PASSWORD, address="10.0.0.9").status_code == 429


def test_logins_are_accepted_again_once_the_window_has_passed(settings, staff):
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 2
    for _ in range(5):
        login("/api/auth/token/", "staff", "guess")
    refused = login("/api/auth/token/", "staff", PASSWORD)
    assert refused.status_code == 429 and refused["Retry-After"] in ("1", "2")
    count, deadline = account_count("staff", "10.0.0.1"), time.monotonic() + 10
    while count.exceeded() and time.monotonic() < deadline:  # the window closes as the cache expires it
        time.sleep(0.05)
    assert login("/api/auth/token/", "staff", PASSWORD).status_code == 200


def guesses_through_a_proxy(settings, forwarded: str) -> None:
    """Five wrong passwords for staff, each through the proxy at 10.0.0.254 with ``forwarded``."""
    for _ in range(5):
        APIClient().post(
            "/api/auth/token/",
            {"username": "staff", "password": "guess"},
            REMOTE_ADDR="10.0.0.254",
            HTTP_X_FORWARDED_FOR=forwarded,
        )


def through_the_proxy(forwarded: str) -> int:
    response = APIClient().post(
        "/api/auth/token/",
        {"username": "staff", "password": PASSWORD},
        REMOTE_ADDR="10.0.0.254",
        HTTP_X_FORWARDED_FOR=forwarded,
    )
    return response.status_code


def test_behind_a_trusted_proxy_the_client_is_the_address_the_proxy_saw(settings, staff):
    settings.TRUSTED_PROXIES = ["10.0.0.254"]
    # The guesser writes its own X-Forwarded-For (left); the proxy appends what it saw (right).
    guesses_through_a_proxy(settings, "192.0.2.1, 203.0.113.7")
    assert through_the_proxy("203.0.113.7") == 429  # the guesser, however it names itself
    assert through_the_proxy("192.0.2.1, 203.0.113.7") == 429
    assert through_the_proxy("198.51.100.3") == 200  # the owner, behind the same proxy


def test_a_forwarded_address_from_anyone_else_is_not_believed(settings, staff):
    settings.TRUSTED_PROXIES = []
    guesses_through_a_proxy(settings, "203.0.113.7")
    # Without a trusted proxy every request above came from 10.0.0.254: that address is refused,
    # whatever it now claims to forward for.
    assert through_the_proxy("198.51.100.3") == 429
