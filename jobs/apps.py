from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.conf import settings
        from PIL import Image

        # Pillow's own bomb guard follows ours: it refuses at twice this, after our header check.
        Image.MAX_IMAGE_PIXELS = settings.MAX_IMAGE_PIXELS
