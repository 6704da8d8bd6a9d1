from django.apps import AppConfig


class LoginsConfig(AppConfig):
    """Locked-out logins and API tokens: rows of their own, beside Django's users."""

    name = "imagepipe.logins"
    label = "logins"
    default_auto_field = "django.db.models.BigAutoField"
