"""Staff list and unlock locked-out logins, and revoke API tokens, in the admin
(imagepipe.logins.admin)."""

from __future__ import annotations

import pytest

from imagepipe.logins.models import ApiToken, LoginFailures

from .attempts import PASSWORD, jobs_with, login, token_for

pytestmark = pytest.mark.django_db

LOCKOUTS = "/admin/logins/loginfailures/"


def act(admin_client, url: str, action: str, pks) -> None:
    response = admin_client.post(url, {"action": action, "_selected_action": [str(pk) for pk in pks]})
    assert response.status_code == 302, response.content


def test_locked_out_logins_are_listed_with_their_failures_and_wait(admin_client, staff):
    for _ in range(6):
        login("/accounts/login/", "staff", "guess", address="10.0.0.7")
    for _ in range(2):
        login("/accounts/login/", "bob", "guess", address="10.0.0.8")  # not locked out
    page = admin_client.get(LOCKOUTS)
    assert page.status_code == 200
    (row,) = page.context["cl"].result_list
    assert (row.username, row.address, row.failures) == ("staff", "10.0.0.7", 5)
    text = page.content.decode()
    assert "10.0.0.7" in text and "10.0.0.8" not in text


def test_an_unlocked_login_is_accepted_at_once(admin_client, staff):
    for _ in range(5):
        login("/api/auth/token/", "staff", "guess")
    assert login("/api/auth/token/", "staff", PASSWORD).status_code == 429
    act(admin_client, LOCKOUTS, "unlock", LoginFailures.objects.values_list("pk", flat=True))
    assert not LoginFailures.objects.exists()
    assert login("/api/auth/token/", "staff", PASSWORD).status_code == 200


@pytest.mark.parametrize("url", [LOCKOUTS, "/admin/logins/apitoken/"])
def test_nothing_is_added_by_hand(admin_client, url):
    assert admin_client.get(f"{url}add/").status_code == 403


def test_staff_revoke_selected_tokens(admin_client, alice):
    first, second = token_for("alice"), token_for("alice")
    (oldest, _) = ApiToken.objects.order_by("created", "pk")
    act(admin_client, "/admin/logins/apitoken/", "revoke_tokens", [oldest.pk])
    assert jobs_with(first).status_code == 401
    assert jobs_with(second).status_code == 200


def test_staff_revoke_every_token_of_the_selected_users(admin_client, alice, bob):
    alices, bobs = token_for("alice"), token_for("bob")
    act(admin_client, "/admin/auth/user/", "revoke_users_tokens", [alice.pk])
    assert jobs_with(alices).status_code == 401
    assert jobs_with(bobs).status_code == 200


def test_deactivating_a_user_in_the_admin_deletes_their_tokens(admin_client, alice):
    key = token_for("alice")
    form = {
        "username": "alice",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        # is_active left out: the box unticked
    }
    response = admin_client.post(f"/admin/auth/user/{alice.pk}/change/", form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    alice.refresh_from_db()
    assert not alice.is_active and not ApiToken.objects.exists()
    # Deleted, not merely refused: the token does not come back with the account.
    alice.is_active = True
    alice.save()
    assert jobs_with(key).json()["error"] == "Invalid token."
