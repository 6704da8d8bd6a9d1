"""API tokens (imagepipe.logins.tokens): issued per login, expiring, revoked by DELETE, by a new
password and by deactivating the account."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from imagepipe.logins.models import ApiToken

from .attempts import jobs_with, token_for, with_token

pytestmark = pytest.mark.django_db


def issued_ago(age: timedelta) -> None:
    ApiToken.objects.update(created=timezone.now() - age)


def test_a_token_says_when_it_expires(settings, alice):
    settings.API_TOKEN_TTL_HOURS = 2
    before = timezone.now()
    response = APIClient().post("/api/auth/token/", {"username": "alice", "password": "alice-pass"})
    expires = parse_datetime(response.json()["expires"])
    assert expires is not None and timedelta(hours=2) <= expires - before < timedelta(hours=2, seconds=10)


def test_only_a_digest_of_the_key_is_stored(alice):
    key = token_for("alice")
    assert list(ApiToken.objects.values_list("digest", flat=True)) != [key]
    assert jobs_with(key).status_code == 200


def test_each_login_gets_a_token_of_its_own(alice):
    first, second = token_for("alice"), token_for("alice")
    assert first != second
    assert jobs_with(first).status_code == jobs_with(second).status_code == 200


def test_a_token_works_until_its_lifetime_is_over(settings, alice):
    settings.API_TOKEN_TTL_HOURS = 2
    key = token_for("alice")
    issued_ago(timedelta(hours=2) - timedelta(minutes=1))
    assert jobs_with(key).status_code == 200


def test_an_expired_token_is_refused_saying_so_and_deleted(settings, alice):
    settings.API_TOKEN_TTL_HOURS = 2
    key = token_for("alice")
    issued_ago(timedelta(hours=2, seconds=1))
    response = jobs_with(key)
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    assert response.json()["error"].startswith("Token expired")
    assert not ApiToken.objects.exists()
    assert jobs_with(key).json()["error"] == "Invalid token."


def test_a_new_login_clears_the_users_expired_tokens(settings, alice, bob):
    settings.API_TOKEN_TTL_HOURS = 2
    token_for("alice"), token_for("bob")
    issued_ago(timedelta(hours=3))
    fresh = token_for("alice")
    # alice's old token is gone; bob's waits for his next login, or his next request with it.
    assert sorted(ApiToken.objects.values_list("user__username", flat=True)) == ["alice", "bob"]
    assert jobs_with(fresh).status_code == 200


def test_delete_revokes_the_token_it_is_sent_with_and_no_other(alice):
    first, second = token_for("alice"), token_for("alice")
    assert with_token(first).delete("/api/auth/token/").status_code == 204
    assert jobs_with(first).status_code == 401
    assert jobs_with(second).status_code == 200


def test_delete_without_a_token_is_refused_saying_what_to_send(alice_api):
    response = alice_api.delete("/api/auth/token/")  # logged in, but by no token
    assert response.status_code == 401
    assert response.json()["error"] == "Send the token to revoke as Authorization: Token <key>."


def test_a_login_is_not_refused_for_a_stale_token_its_client_still_sends(alice):
    credentials = {"username": "alice", "password": "alice-pass"}
    response = with_token("not-a-token").post("/api/auth/token/", credentials)
    assert response.status_code == 200


def change_on_the_page(user) -> None:
    client = Client()
    client.force_login(user)
    new = {"new_password1": "a new passphrase", "new_password2": "a new passphrase"}
    form = {"old_password": "alice-pass", **new}
    assert client.post("/accounts/password_change/", form).status_code == 302


def change_in_the_admin(user) -> None:
    client = Client()
    client.force_login(type(user).objects.create_superuser("root"))
    form = {"password1": "a new passphrase", "password2": "a new passphrase", "usable_password": "true"}
    assert client.post(f"/admin/auth/user/{user.pk}/password/", form).status_code == 302


def change_anywhere_else(user) -> None:  # the shell, `manage.py changepassword`
    user.set_password("a new passphrase")
    user.save()


@pytest.mark.parametrize("change", [change_on_the_page, change_in_the_admin, change_anywhere_else])
def test_a_new_password_revokes_the_users_tokens(alice, change):
    key = token_for("alice")
    change(alice)
    response = jobs_with(key)
    assert response.status_code == 401
    assert response.json()["error"] == "Token revoked: the account's password has changed."
    assert not ApiToken.objects.exists()


def test_a_deactivated_users_tokens_are_refused_and_deleted(alice):
    key = token_for("alice")
    alice.is_active = False
    alice.save()
    response = jobs_with(key)
    assert response.status_code == 401
    assert response.json()["error"] == "Token revoked: the account is deactivated."
    assert not ApiToken.objects.exists()


def test_the_docs_show_both_verbs_and_that_posting_needs_no_token(alice_api):
    paths = alice_api.get("/api/schema/", {"format": "json"}).json()["paths"]
    post, delete = paths["/api/auth/token/"]["post"], paths["/api/auth/token/"]["delete"]
    assert "security" not in post and sorted(post["responses"]) == ["200", "400", "429"]
    assert sorted(delete["responses"]) == ["204", "401"]
