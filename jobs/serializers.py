from django.urls import reverse
from rest_framework import serializers

from imagepipe.core.output import FORMATS

from .models import Job, Tile


class JobSerializer(serializers.ModelSerializer):
    result_url = serializers.SerializerMethodField()
    stages = serializers.SerializerMethodField()
    timings = serializers.DictField(read_only=True)
    duration = serializers.FloatField(read_only=True)
    priority = serializers.SerializerMethodField()
    owner = serializers.CharField(source="owner.username", read_only=True)

    class Meta:
        model = Job
        fields = [
            "id",
            "owner",
            "status",
            "priority",
            "original_name",
            "operations",
            "tile_size",
            "output_format",
            "output_quality",
            "width",
            "height",
            "tiles_total",
            "tiles_done",
            "created_at",
            "started_at",
            "finished_at",
            "error",
            "result_url",
            "stage",
            "stages",
            "dispatched_at",
            "timings",
            "duration",
        ]
        read_only_fields = fields

    def get_priority(self, job: Job) -> str:
        return Job.Priority(job.priority).label.lower()

    def get_stages(self, job: Job) -> int:
        return len(job.stages)

    def get_result_url(self, job: Job) -> str | None:
        if job.status != Job.Status.DONE:
            return None
        url = reverse("api-job-result", args=[job.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request else url


class TileSerializer(serializers.ModelSerializer):
    place = serializers.SerializerMethodField()
    canvas = serializers.SerializerMethodField()

    class Meta:
        model = Tile
        fields = [
            "stage",
            "index",
            "col",
            "row",
            "x",
            "y",
            "width",
            "height",
            "status",
            "worker",
            "attempts",
            "partition",
            "offset",
            "duration_ms",
            "finished_at",
            "place",
            "canvas",
        ]
        read_only_fields = fields

    def get_place(self, tile: Tile) -> list[int]:
        return tile.placement()["place"]

    def get_canvas(self, tile: Tile) -> list[int]:
        return tile.placement()["canvas"]


class SubmitSerializer(serializers.Serializer):
    """What POST /api/jobs/ takes (documentation only: jobs.uploads validates)."""

    image = serializers.FileField()
    operations = serializers.CharField(help_text='a JSON list, e.g. [{"op": "gaussian_blur", "radius": 4}]')
    tile_size = serializers.IntegerField(required=False)
    output_format = serializers.ChoiceField(choices=list(FORMATS), required=False)
    quality = serializers.IntegerField(required=False, min_value=1, max_value=100)
    priority = serializers.ChoiceField(choices=["low", "normal", "high"], required=False)


class PrioritySerializer(serializers.Serializer):
    """What POST /api/jobs/{id}/priority/ takes."""

    priority = serializers.ChoiceField(choices=["low", "normal", "high"])
