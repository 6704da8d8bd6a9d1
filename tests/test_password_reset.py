"""The password-reset pages are routed only with a mail server to send their link (EMAIL_HOST,
imagepipe/urls.py); logging in and changing a password are routed either way."""

from __future__ import annotations

import importlib
import re

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import clear_url_caches

import imagepipe.urls

pytestmark = pytest.mark.django_db


def reload_urls() -> None:
    importlib.reload(imagepipe.urls)
    clear_url_caches()


@pytest.fixture
def mail_server(settings):
    """The URL conf as built with EMAIL_HOST set; built again as configured afterwards."""
    configured = django_settings.EMAIL_HOST
    settings.EMAIL_HOST = "smtp.example.org"
    reload_urls()
    yield
    settings.EMAIL_HOST = configured
    reload_urls()


def test_without_a_mail_server_there_is_no_password_reset(client, settings):
    assert settings.EMAIL_HOST == ""
    assert client.get("/accounts/password_reset/").status_code == 404
    assert client.get("/accounts/reset/MQ/set-password/").status_code == 404
    assert "Forgot your password?" not in client.get("/accounts/login/").content.decode()
    assert client.get("/accounts/password_change/").status_code == 302  # to log in first


def test_with_a_mail_server_a_reset_link_is_mailed_and_opens(mail_server, alice, mailoutbox):
    alice.email = "alice@example.org"
    alice.save()
    client = Client()
    assert 'href="/accounts/password_reset/"' in client.get("/accounts/login/").content.decode()
    assert client.post("/accounts/password_reset/", {"email": "alice@example.org"}).status_code == 302
    (mail,) = mailoutbox
    assert mail.to == ["alice@example.org"]
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.body)
    assert link is not None
    # The link leads to the form that sets the new password.
    form = client.get(link[1], follow=True).context["form"]
    assert form.fields.keys() == {"new_password1", "new_password2"}
