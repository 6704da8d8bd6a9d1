from django.urls import reverse
from drf_spectacular.utils import OpenApiRequest, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers

from imagepipe.api_errors import ErrorSerializer, refusal
from imagepipe.core.operations import MAX_CHAIN_LENGTH, OPERATIONS
from imagepipe.core.output import FORMATS

from .models import Job, Tile, Upload
from .models.limits import QUOTAS

CHAIN_EXAMPLE = [{"op": "gaussian_blur", "radius": 4}, {"op": "grayscale"}]


@extend_schema_field(
    {
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_CHAIN_LENGTH,
        "items": {
            "type": "object",
            "description": "A step: the operation's name and its parameters by name; a parameter left out "
            "takes its default (GET /api/operations/ lists each operation's, with type, range and default).",
            "properties": {"op": {"type": "string", "enum": list(OPERATIONS)}},
            "required": ["op"],
            "additionalProperties": {"type": "number"},
        },
        "example": CHAIN_EXAMPLE,
    }
)
class ChainField(serializers.JSONField):
    """An operation chain, as JSON: its documented shape; jobs.uploads checks it."""


@extend_schema_field(
    {
        "type": "object",
        "description": "Seconds the latest run spent in each phase: queued (until its first tile was sent), "
        "processing (until its last tile was recorded), assembling (until the result was stored); the phase "
        "under way (`phase`) counts up to the moment of the answer; null for a phase not reached.",
        "properties": {name: {"type": "number", "nullable": True} for name in Job.PHASES},
        "example": {"queued": 0.1, "processing": 3.4, "assembling": None},
    }
)
class TimingsField(serializers.DictField):
    """The job's phase timings: their documented shape."""


class JobSerializer(serializers.ModelSerializer):
    result_url = serializers.SerializerMethodField()
    stages = serializers.SerializerMethodField()
    operations = ChainField(read_only=True)
    timings = TimingsField(read_only=True)
    phase = serializers.CharField(read_only=True, allow_null=True, help_text="the phase under way, if any")
    duration = serializers.FloatField(read_only=True)
    priority = serializers.SerializerMethodField()
    owner = serializers.CharField(source="owner.username", read_only=True)
    thumbnail = serializers.ChoiceField(
        choices=["original", "result"],
        read_only=True,
        allow_null=True,
        help_text="the preview that stands for the job in lists (preview/{thumbnail}/), null until made",
    )

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
            "queued_at",
            "dispatched_at",
            "timings",
            "phase",
            "duration",
            "thumbnail",
            "keep",
            "viewer",
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


TIME = serializers.DateTimeField()  # how DRF writes a time (to_representation keeps None)


class TileSerializer(serializers.ModelSerializer):
    retried = serializers.SerializerMethodField(help_text="sent more than once")
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
            "state",
            "worker",
            "attempts",
            "retried",
            "partition",
            "offset",
            "duration_ms",
            "dispatched_at",
            "finished_at",
            "error",
            "place",
            "canvas",
        ]
        read_only_fields = fields

    def get_retried(self, tile: Tile) -> bool:
        return tile.attempts > 1

    def get_place(self, tile: Tile) -> list[int]:
        return tile.placement()["place"]

    def get_canvas(self, tile: Tile) -> list[int]:
        return tile.placement()["canvas"]

    def to_representation(self, tile: Tile) -> dict:
        """The fields above, read at once rather than field by field: a job's list is up to
        MAX_TILES_PER_JOB of them (16,384 took DRF's way 2.8 s); each stage's canvas is worked out
        once for the list (the serializer of a list is one for all its tiles)."""
        canvases: dict = self.__dict__.setdefault("canvases", {})
        key = (tile.job_id, tile.stage)
        if key not in canvases:
            canvases[key] = list(tile.job.canvas(tile.stage))
        box = tile.job.placed_box(tile)
        row = {name: getattr(tile, name) for name in self.Meta.fields[:11]}  # stage … attempts
        row["retried"] = tile.attempts > 1
        row |= {name: getattr(tile, name) for name in ("partition", "offset", "duration_ms")}
        row |= {
            name: TIME.to_representation(getattr(tile, name)) for name in ("dispatched_at", "finished_at")
        }
        row |= {
            "error": tile.error,
            "place": [box.left, box.top, box.width, box.height],
            "canvas": canvases[key],
        }
        return row


class SubmitSerializer(serializers.Serializer):
    """What POST /api/jobs/ takes (documentation only: jobs.uploads validates)."""

    image = serializers.FileField(
        required=False, help_text="the image, in this request (up to MAX_REQUEST_BYTES); or, instead:"
    )
    upload = serializers.UUIDField(
        required=False, help_text="a complete resumable upload's id (/api/uploads/)"
    )
    storage_key = serializers.CharField(
        required=False, help_text="a key in the configured storage, under IMPORT_PREFIX<your username>/"
    )
    operations = ChainField(help_text="the chain as JSON text, applied in order")
    tile_size = serializers.IntegerField(required=False)
    output_format = serializers.ChoiceField(choices=list(FORMATS), required=False)
    quality = serializers.IntegerField(required=False, min_value=1, max_value=100)
    priority = serializers.ChoiceField(choices=["low", "normal", "high"], required=False)


class SubmittedJobSerializer(JobSerializer):
    """What POST /api/jobs/ answers (documentation only): the job, with warnings when there are any."""

    warnings = serializers.ListField(
        child=serializers.CharField(),
        required=False,  # present only when there are some
        help_text="what did not stop the job but the submitter should know, e.g. a dropped ICC profile",
    )

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "warnings"]
        read_only_fields = fields


class UploadSerializer(serializers.ModelSerializer):
    """A resumable upload: ``offset`` is where the next piece goes (the bytes stored so far)."""

    offset = serializers.IntegerField(source="received", read_only=True)
    complete = serializers.BooleanField(read_only=True)
    expires_at = serializers.DateTimeField(read_only=True, help_text="unless a piece comes before then")
    owner = serializers.CharField(source="owner.username", read_only=True)
    size = serializers.IntegerField(min_value=1, help_text="the whole file's length in bytes")

    class Meta:
        model = Upload
        fields = [
            "id",
            "owner",
            "filename",
            "size",
            "offset",
            "chunk_bytes",
            "complete",
            "created_at",
            "updated_at",
            "expires_at",
        ]
        read_only_fields = ["id", "chunk_bytes", "created_at", "updated_at"]


class PrioritySerializer(serializers.Serializer):
    """What POST /api/jobs/{id}/priority/ takes."""

    priority = serializers.ChoiceField(choices=["low", "normal", "high"])


class KeepSerializer(serializers.Serializer):
    """What POST /api/jobs/{id}/keep/ takes."""

    keep = serializers.BooleanField(help_text="true: never deleted by retention; false: deleted once due")


class QuotaErrorSerializer(ErrorSerializer):
    """A refusal of POST /api/jobs/ with 403 (documentation only): priority high not allowed, or a
    quota exceeded, with its details."""

    code = serializers.CharField(required=False, help_text="`quota_exceeded` for a quota")
    limit = serializers.ChoiceField(
        choices=list(QUOTAS), required=False, help_text="the quota: a QUOTA_<NAME> setting, or the user's own"
    )
    value = serializers.IntegerField(required=False, help_text="the limit (jobs, megapixels or MB)")
    used = serializers.FloatField(required=False, help_text="the user's use before this job, in its unit")


# POST /api/jobs/ in the docs: the chain is a multipart part of JSON, and every refusal is {"error"}.
submit_schema = extend_schema(
    request={
        "multipart/form-data": OpenApiRequest(
            SubmitSerializer, encoding={"operations": {"contentType": "application/json"}}
        )
    },
    responses={
        201: SubmittedJobSerializer,
        400: refusal("the image, the chain or a setting is refused; `error` says why"),
        401: refusal("no credentials, or a token that is not valid"),
        403: OpenApiResponse(
            QuotaErrorSerializer,
            "a quota exceeded (`code`, `limit`, `value`, `used`), priority high without the allowance, "
            "or a session without its CSRF token",
        ),
        413: refusal("the upload is larger than MAX_UPLOAD_BYTES"),
        415: refusal("the file is not an image in a supported format (BMP, GIF, JPEG, PNG, TIFF, WebP)"),
        429: refusal("more submissions than JOB_SUBMIT_RATE allows; wait and retry"),
    },
)
