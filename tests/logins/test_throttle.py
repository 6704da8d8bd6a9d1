"""Wrong passwords lock a username out from an address with a doubling wait, and cap an address,
on every login endpoint (imagepipe.logins.throttle); a forwarded address is believed only from a
trusted proxy."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from imagepipe.logins.models import LoginFailures
from imagepipe.logins.throttle import in_words

from .attempts import ENDPOINTS, PASSWORD, login, outcome, time_passes

pytestmark = pytest.mark.django_db

REFUSED = "Too many failed logins"


def wait(response) -> int:
    """The seconds a refused token request is told to wait."""
    assert response.status_code == 429, response.content
    return int(response["Retry-After"])


def guess(times: int, username: str = "staff", address: str = "10.0.0.1") -> None:
    for _ in range(times):
        assert login("/api/auth/token/", username, "guess", address).status_code == 400


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_an_account_is_refused_from_an_address_after_five_wrong_passwords_but_not_elsewhere(endpoint, staff):
    assert [outcome(endpoint, login(endpoint, "staff", "guess")) for _ in range(5)] == ["wrong"] * 5
    assert outcome(endpoint, login(endpoint, "staff", PASSWORD)) == "refused"
    # Whoever guessed at the username kept only themselves out: its owner, elsewhere, logs in.
    assert outcome(endpoint, login(endpoint, "staff", PASSWORD, address="10.0.0.2")) == "accepted"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_the_right_password_is_accepted_once_the_wait_is_over(endpoint, staff):
    for _ in range(5):
        login(endpoint, "staff", "guess")
    time_passes(50)
    assert outcome(endpoint, login(endpoint, "staff", PASSWORD)) == "refused"
    time_passes(10)
    assert outcome(endpoint, login(endpoint, "staff", PASSWORD)) == "accepted"
    assert not LoginFailures.objects.exists()  # the pair starts again from no failures


def test_each_further_wrong_password_doubles_the_wait_up_to_the_cap(settings, staff):
    settings.LOGIN_LOCKOUT_MAX_SECONDS = 300
    guess(5)
    waits = []
    for _ in range(5):
        waits.append(wait(login("/api/auth/token/", "staff", PASSWORD)))
        time_passes(waits[-1])
        guess(1)  # the wait is over: one more guess, and a longer wait
    waits.append(wait(login("/api/auth/token/", "staff", PASSWORD)))
    # Each answer is the whole wait, or a second less on a slow machine.
    assert waits == pytest.approx([60, 120, 240, 300, 300, 300], abs=1)
    assert LoginFailures.objects.get().failures == 10


def test_a_refused_attempt_is_not_a_failure_and_does_not_lengthen_the_wait(staff):
    guess(5)
    for _ in range(3):
        login("/api/auth/token/", "staff", "guess")
    assert LoginFailures.objects.get().failures == 5
    assert 59 <= wait(login("/api/auth/token/", "staff", PASSWORD)) <= 60


def test_a_pair_is_forgotten_a_window_after_its_wait_ended(staff):
    guess(5)
    time_passes(60 + 900)
    guess(1, username="someone-else")  # any failure clears what is forgotten
    assert list(LoginFailures.objects.values_list("username", flat=True)) == ["someone-else"]
    guess(4)
    assert login("/api/auth/token/", "staff", PASSWORD).status_code == 200


def test_a_pair_not_yet_forgotten_keeps_its_count(staff):
    guess(5)
    time_passes(60 + 890)
    guess(1)
    assert 119 <= wait(login("/api/auth/token/", "staff", PASSWORD)) <= 120


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_an_address_is_refused_after_twenty_wrong_passwords_for_any_accounts(endpoint, staff):
    guesses = [login(endpoint, f"user{n}", "guess", address="10.0.0.9") for n in range(20)]
    assert {outcome(endpoint, response) for response in guesses} == {"wrong"}
    assert outcome(endpoint, login(endpoint, "staff", PASSWORD, address="10.0.0.9")) == "refused"
    assert outcome(endpoint, login(endpoint, "staff", PASSWORD, address="10.0.0.10")) == "accepted"


def test_the_token_endpoint_answers_429_with_retry_after_and_a_json_error(staff):
    guess(5)
    response = login("/api/auth/token/", "staff", PASSWORD)
    assert 59 <= wait(response) <= 60
    assert response.json()["error"].startswith("Too many failed logins. Expected available in ")


@pytest.mark.parametrize("endpoint", ["/accounts/login/", "/admin/login/"])
def test_the_login_forms_say_when_to_try_again_and_log_nobody_in(settings, endpoint, staff):
    settings.LOGIN_LOCKOUT_SECONDS = 300
    for _ in range(5):
        login(endpoint, "staff", "guess")
    response = login(endpoint, "staff", PASSWORD)
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [f"{REFUSED}. Try again in 5 minutes."]
    assert "_auth_user_id" not in response.wsgi_request.session


def test_the_address_cap_is_told_in_minutes(staff):
    for n in range(20):
        login("/accounts/login/", f"user{n}", "guess", address="10.0.0.9")
    response = login("/accounts/login/", "staff", PASSWORD, address="10.0.0.9")
    assert response.context["form"].non_field_errors() == [f"{REFUSED}. Try again in 15 minutes."]


@pytest.mark.parametrize(
    "seconds,words", [(1, "1 second"), (45, "45 seconds"), (60, "1 minute"), (61, "2 minutes")]
)
def test_a_wait_is_told_in_seconds_under_a_minute_then_in_minutes_rounded_up(seconds, words):
    assert in_words(seconds) == words


def test_wrong_passwords_count_across_the_endpoints_and_the_usernames_case(staff):
    for endpoint in ENDPOINTS:
        login(endpoint, "staff", "guess")
    login("/admin/login/", "STAFF", "guess")
    login("/api/auth/token/", "Staff", "guess")
    assert outcome("/accounts/login/", login("/accounts/login/", "staff", PASSWORD)) == "refused"


def test_the_right_password_clears_the_accounts_count(staff):
    for _ in range(2):
        guess(4)
        assert login("/api/auth/token/", "staff", PASSWORD).status_code == 200


def test_the_right_password_leaves_the_address_count_as_it_is(staff):
    for n in range(19):
        login("/api/auth/token/", f"user{n}", "guess", address="10.0.0.9")
    assert login("/api/auth/token/", "staff", PASSWORD, address="10.0.0.9").status_code == 200
    login("/api/auth/token/", "user19", "guess", address="10.0.0.9")
    assert login("/api/auth/token/", "staff", PASSWORD, address="10.0.0.9").status_code == 429


@pytest.mark.parametrize("username", ["x" * 5000, "two\nlines", "ÉLODIE"])
def test_any_username_is_counted_and_locked_out(username):
    guess(5, username=username)
    assert login("/api/auth/token/", username, "guess").status_code == 429
    assert LoginFailures.objects.get().username == username.casefold()[:150]


def guesses_through_a_proxy(forwarded: str) -> None:
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
    guesses_through_a_proxy("192.0.2.1, 203.0.113.7")
    assert LoginFailures.objects.get().address == "203.0.113.7"
    assert through_the_proxy("203.0.113.7") == 429  # the guesser, however it names itself
    assert through_the_proxy("192.0.2.1, 203.0.113.7") == 429
    assert through_the_proxy("198.51.100.3") == 200  # the owner, behind the same proxy


def test_a_forwarded_address_from_anyone_else_is_not_believed(settings, staff):
    settings.TRUSTED_PROXIES = []
    guesses_through_a_proxy("203.0.113.7")
    # Without a trusted proxy every request above came from 10.0.0.254: that address is refused,
    # whatever it now claims to forward for.
    assert through_the_proxy("198.51.100.3") == 429
