from django.apps import AppConfig

ICC_PROFILE_MAX_BYTES = 16 * 1024 * 1024


class JobsConfig(AppConfig):
    name = "jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        import pillow_heif
        from django.conf import settings
        from django.db.models.signals import pre_delete
        from PIL import Image, PngImagePlugin

        from .cleanup import delete_files_with_job, delete_pieces_with_upload
        from .models import Job, Upload

        pre_delete.connect(delete_files_with_job, sender=Job, dispatch_uid="jobs-files-go-with-the-row")
        pre_delete.connect(delete_pieces_with_upload, sender=Upload, dispatch_uid="upload-pieces")

        pillow_heif.register_heif_opener()  # HEIC: Pillow opens and saves it as format "HEIF"
        # Pillow's own bomb guard follows ours: it refuses at twice this, after our header check.
        Image.MAX_IMAGE_PIXELS = settings.MAX_IMAGE_PIXELS
        # A PNG's compressed chunks (the ICC profile among them) are refused by Pillow beyond 1 MB
        # inflated; printers' and cameras' profiles can be larger, and a result carries its
        # original's profile, so every part that reads our PNGs allows a bounded few megabytes.
        PngImagePlugin.MAX_TEXT_CHUNK = max(PngImagePlugin.MAX_TEXT_CHUNK, ICC_PROFILE_MAX_BYTES)
