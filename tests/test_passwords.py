"""Passwords people set are checked: too short, too common, all digits or too like the username are
refused, in the admin as anywhere Django validates one."""

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("weak", ["short-pw", "password123", "1234567890123"])
def test_a_weak_password_is_refused(alice, weak):
    with pytest.raises(ValidationError):
        validate_password(weak, alice)


def test_a_strong_password_is_taken(alice):
    validate_password("correct horse battery staple", alice)


def test_the_admin_refuses_a_weak_password_for_a_new_user(admin_client, django_user_model):
    form = {"username": "carol", "password1": "password123", "password2": "password123"}
    page = admin_client.post("/admin/auth/user/add/", form)
    assert page.status_code == 200 and "This password is too common" in page.content.decode()
    assert not django_user_model.objects.filter(username="carol").exists()
