from django.apps import AppConfig


class PipelineConfig(AppConfig):
    """Everything that talks to Kafka or runs as a loop: dispatcher, collector, worker."""

    name = "pipeline"
    default_auto_field = "django.db.models.BigAutoField"
