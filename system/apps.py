from django.apps import AppConfig


class SystemConfig(AppConfig):
    """Is ImagePipe working? Health, readiness, metrics and the staff system strip."""

    name = "system"
