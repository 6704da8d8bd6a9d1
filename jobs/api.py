"""The JSON API for jobs: list, create, retrieve, download the result."""

import io

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action, api_view
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from imagepipe.api_errors import NestingJSONParser
from imagepipe.core.deepzoom import BASENAME
from imagepipe.core.operations import catalogue
from imagepipe.core.output import FORMATS

from . import actions, previews, pyramids, resumable, storage
from .forms import HistoryFilter
from .models import Job, Upload
from .serializers import (
    JobSerializer,
    KeepSerializer,
    PrioritySerializer,
    TileSerializer,
    UploadSerializer,
    submit_schema,
)
from .submission import SubmissionError, parse_priority
from .throttles import SubmitRateThrottle


@extend_schema(responses=OpenApiTypes.OBJECT)
@api_view(["GET"])
def operations(request):
    """The operation catalogue: each operation's kind and parameters with type, range and default."""
    return Response(catalogue())


@extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
@api_view(["POST"])
def plan(request):
    """What a chain would make of an image of a size, before anything is uploaded: each stage's
    size and tiles, the result's size and mode; or a 400 with the reason, as a submission would."""
    data = request.data
    if not isinstance(data, dict):
        return Response({"error": "the body must be a JSON object"}, status=status.HTTP_400_BAD_REQUEST)
    try:
        job = actions.plan(
            data.get("operations"),
            data.get("width"),
            data.get("height"),
            data.get("mode", "RGB"),
            data.get("tile_size"),
        )
    except SubmissionError as exc:
        return Response({"error": str(exc)}, status=exc.status)
    stages = [
        {"input": job.stage_size(stage), "output": job.canvas(stage), "tiles": len(job.stage_tiles(stage))}
        for stage in range(len(job.stages))
    ]
    width, height = job.output_size
    return Response(
        {
            "stages": stages,
            "tiles_total": sum(stage["tiles"] for stage in stages),
            "result": {"width": width, "height": height, "mode": job.output_mode},
        }
    )


# GET /api/jobs/ takes the history page's filters (jobs.forms.HistoryFilter).
LIST_FILTERS = [
    OpenApiParameter("status", str, enum=Job.Status.values),
    OpenApiParameter("op", str, description="the chain contains this operation"),
    OpenApiParameter("since", OpenApiTypes.DATE, description="created on or after"),
    OpenApiParameter("until", OpenApiTypes.DATE, description="created on or before"),
    OpenApiParameter("q", str, description="the file name contains"),
    OpenApiParameter("scope", str, enum=["all", "mine"], description="staff: every job or their own"),
    OpenApiParameter("owner", str, description="staff: one owner's jobs (username)"),
]


@extend_schema_view(
    list=extend_schema(parameters=LIST_FILTERS, description="Newest first, filtered as on History.")
)
class JobViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    serializer_class = JobSerializer
    parser_classes = [NestingJSONParser, FormParser, MultiPartParser]
    queryset = Job.objects.none()  # for the schema's types only; get_queryset scopes every request

    def get_queryset(self):
        jobs = Job.objects.visible_to(self.request.user)
        if self.action != "list":
            return jobs
        filters = HistoryFilter(self.request.query_params, self.request.user)  # the history page's
        if not filters.is_valid():
            raise ValidationError(filters.errors)  # type: ignore[arg-type]  # a dict of lists at run time
        return filters.apply(jobs.select_related("owner"))

    def get_throttles(self):
        return [SubmitRateThrottle()] if self.action == "create" else super().get_throttles()

    @submit_schema
    def create(self, request):
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > settings.MAX_REQUEST_BYTES:  # refused before the body is read
            return Response(
                {
                    "error": f"the request is larger than {settings.MAX_REQUEST_BYTES} bytes; send a "
                    "larger file as a resumable upload (POST /api/uploads/) and submit its id as 'upload'"
                },
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        data = request.data
        try:
            original, upload = resumable.original_of(
                request.user, request.FILES.get("image"), data.get("upload"), data.get("storage_key")
            )
            job = actions.submit(
                request.user,
                original,
                data.get("operations"),
                data.get("tile_size"),
                data.get("output_format"),
                data.get("quality"),
                data.get("priority"),
            )
        except SubmissionError as exc:
            return Response({"error": str(exc), **exc.details}, status=exc.status)
        if upload is not None:
            upload.delete()  # its pieces are the job's original now
        # Notes such as a dropped ICC profile are told once, here; the job row does not keep them.
        warnings = {"warnings": job.notes} if job.notes else {}
        return Response({**self.get_serializer(job).data, **warnings}, status=status.HTTP_201_CREATED)

    def destroy(self, request, pk=None):
        """Delete the job with its original, tiles and result."""
        actions.delete(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self.move(actions.cancel, "an unfinished job can be cancelled")

    @extend_schema(request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        """Send no more of the job's tiles (those in flight finish)."""
        return self.move(actions.pause, "a queued or running job can be paused")

    @extend_schema(request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Send a paused job's remaining tiles again."""
        return self.move(actions.resume, "a paused job can be resumed")

    @extend_schema(request=PrioritySerializer, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def priority(self, request, pk=None):
        """Set the job's priority: low, normal or high."""
        job = self.get_object()
        if job.status in Job.TERMINAL:
            return conflict(f"the job is {job.status}; only an unfinished job's priority can change")
        try:
            priority = parse_priority(request.data.get("priority"), request.user)
        except SubmissionError as exc:
            return Response({"error": str(exc)}, status=exc.status)
        actions.prioritise(job, priority)
        return Response(self.get_serializer(job).data)

    @extend_schema(request=KeepSerializer, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def keep(self, request, pk=None):
        """Keep the job past JOB_RETENTION_DAYS (``{"keep": true}``), or let retention delete it."""
        job = self.get_object()
        wanted = KeepSerializer(data=request.data)
        wanted.is_valid(raise_exception=True)  # 400 with the reason
        actions.keep(job, wanted.validated_data["keep"])
        return Response(self.get_serializer(job).data)

    @extend_schema(request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        return self.move(actions.retry, "a failed or cancelled job can be retried")

    def move(self, act, only: str) -> Response:
        """Apply one of the job's verbs (jobs.actions): the job as it is now, or 409 saying when."""
        job = self.get_object()
        if not act(job):
            return conflict(f"the job is {job.status}; only {only}")
        job.refresh_from_db()
        return Response(self.get_serializer(job).data)

    @extend_schema(responses=TileSerializer(many=True))
    @action(detail=True, url_path="tiles", url_name="tiles")
    def tiles(self, request, pk=None):
        """Every tile of the job with who did it and where it travelled (not paginated)."""
        job = self.get_object()
        tiles = list(job.tiles.all())
        for tile in tiles:
            tile.job = job  # one job for all: no query per tile
        return Response(TileSerializer(tiles, many=True).data)

    @extend_schema(responses=TileSerializer)
    @action(detail=True, url_path=r"tiles/(?P<stage>\d+)/(?P<index>\d+)", url_name="tile")
    def tile(self, request, pk=None, stage=None, index=None):
        """One tile's story: where it is, how often it was sent, who did it, and why it failed."""
        job = self.get_object()
        tile = get_object_or_404(job.tiles, stage=stage, index=index)
        tile.job = job
        return Response(TileSerializer(tile).data)

    @extend_schema(responses={(200, "image/jpeg"): OpenApiTypes.BINARY})
    @action(detail=True, url_path=r"tiles/(?P<stage>\d+)/(?P<index>\d+)/preview", url_name="tile-preview")
    def tile_preview(self, request, pk=None, stage=None, index=None):
        """A finished tile's pixels, small, for the live mosaic (gone once the job is done)."""
        tile = self.get_object().tiles.done().filter(stage=stage, index=index).first()
        if tile is None or not tile.result or not default_storage.exists(tile.result.name):
            raise Http404("no stored pixels for this tile")
        return image_response(*previews.tile_preview(tile))

    @extend_schema(
        parameters=[OpenApiParameter("size", int, enum=list(previews.SIZES))],
        responses={(200, "image/jpeg"): OpenApiTypes.BINARY, 404: OpenApiTypes.OBJECT},
    )
    @action(detail=True, url_path=r"preview/(?P<which>original|result)", url_name="preview")
    def preview(self, request, pk=None, which=None):
        """The original or the result, fitted in ``?size=`` 160 or 1000 pixels, as the pipeline
        stored it; 404 until it has (the original's when the job starts, the result's with it)."""
        job = self.get_object()
        if which == "result" and job.status != Job.Status.DONE:
            return conflict(f"the job is {job.status}; no result yet")
        size = request.query_params.get("size", str(previews.SIZES[0]))
        if size not in {str(allowed) for allowed in previews.SIZES}:
            return Response({"error": f"size must be one of {list(previews.SIZES)}"}, status=400)
        try:
            return image_response(*previews.stored_preview(job, which, int(size)))
        except previews.NotReady as exc:
            response = Response({"error": str(exc)}, status=status.HTTP_404_NOT_FOUND)
            response["Cache-Control"] = "no-store"  # it will be there soon: ask again
            return response

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @action(detail=True, url_path="original", url_name="original")
    def original(self, request, pk=None):
        """The uploaded file as it was received."""
        job = self.get_object()
        return download(job.original, job.original_name, "application/octet-stream")

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @action(detail=True, url_path="result", url_name="result")
    def result(self, request, pk=None):
        job = self.get_object()
        if job.status != Job.Status.DONE or not job.result:
            return conflict(f"the job is {job.status}; no result yet")
        output = FORMATS[job.output_format]
        return download(job.result, job.result_filename, output.content_type)


class UploadViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Resumable uploads, for files larger than one request: POST the file's name and size, PATCH
    its pieces in order (``Upload-Offset`` says where each goes), then submit a job with the upload's
    id as ``upload``. After a dropped connection, GET the upload: ``offset`` is where to go on."""

    serializer_class = UploadSerializer
    parser_classes = [NestingJSONParser, FormParser, MultiPartParser]
    queryset = Upload.objects.none()
    lookup_value_regex = "[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}"  # an id that is no UUID: 404

    def get_queryset(self):
        return Upload.objects.visible_to(self.request.user).select_related("owner")

    @extend_schema(
        request=UploadSerializer,
        responses={201: UploadSerializer, 413: OpenApiTypes.OBJECT, 429: OpenApiTypes.OBJECT},
    )
    def create(self, request):
        """Begin an upload: ``filename`` and ``size`` (bytes, up to MAX_UPLOAD_BYTES)."""
        try:
            upload = resumable.begin(request.user, request.data.get("filename"), request.data.get("size"))
        except SubmissionError as exc:
            return Response({"error": str(exc)}, status=exc.status)
        return Response(self.get_serializer(upload).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request={"application/octet-stream": OpenApiTypes.BINARY},  # or tus' application/offset+octet-stream
        parameters=[OpenApiParameter("Upload-Offset", int, OpenApiParameter.HEADER, required=True)],
        responses={200: UploadSerializer, 409: OpenApiTypes.OBJECT},
    )
    def partial_update(self, request, pk=None):
        """The next piece, as the body: ``chunk_bytes`` long (the last: what is left), at the
        upload's ``offset`` (409 with the right ``offset`` otherwise)."""
        upload = get_object_or_404(Upload, pk=pk, owner=request.user)  # only the owner adds to it
        try:
            body = request.stream or io.BytesIO()  # None: no body
            upload = resumable.append(upload, request.headers.get("Upload-Offset"), body)
        except SubmissionError as exc:
            return Response({"error": str(exc), **exc.details}, status=exc.status)
        return Response(self.get_serializer(upload).data)


@extend_schema(
    responses={
        (200, "image/jpeg"): OpenApiTypes.BINARY,
        (200, "application/xml"): OpenApiTypes.STR,
        404: None,
    }
)
@api_view(["GET"])
def pyramid(request, job_id, which, level=None, column=None, row=None, extension=None):
    """A big job's zoomable view, once its ``viewer`` is ready: DeepZoom's ``{which}.dzi`` and the
    tiles it names, ``{which}_files/{level}/{column}_{row}.{format}``, for the original or the result."""
    job = get_object_or_404(Job.objects.visible_to(request.user), pk=job_id)
    if job.viewer != Job.Viewer.READY:
        return Response({"error": "this job has no zoomable view (yet)"}, status=status.HTTP_404_NOT_FOUND)
    try:
        member = f"{BASENAME}.dzi" if level is None else f"{level}/{column}_{row}.{extension}"
        return image_response(*pyramids.read(job, which, member))
    except pyramids.Missing as exc:
        raise Http404(str(exc)) from None


def image_response(data: bytes, content_type: str) -> HttpResponse:
    response = HttpResponse(data, content_type=content_type)
    response["Cache-Control"] = "private, max-age=3600"
    return response


def conflict(message: str) -> Response:
    return Response({"error": message}, status=status.HTTP_409_CONFLICT)


def download(field_file, filename: str, content_type: str) -> FileResponse | HttpResponseRedirect | Response:
    """After the access check: object storage hands out a short-lived signed URL, disks stream."""
    if not _local(field_file.storage):
        disposition = content_disposition_header(True, filename)
        return HttpResponseRedirect(
            field_file.storage.url(
                field_file.name,
                parameters={"ResponseContentDisposition": disposition, "ResponseContentType": content_type},
            )
        )
    try:
        with storage.calls(f"reading {field_file.name}"):
            handle = field_file.open("rb")
    except FileNotFoundError:
        raise Http404("file missing from storage") from None
    except storage.StorageUnavailable:
        return Response({"error": "storage is unavailable: try again later"}, status=503)
    return FileResponse(handle, as_attachment=True, filename=filename, content_type=content_type)


def _local(storage) -> bool:
    try:
        storage.path("")
    except NotImplementedError:
        return False
    return True
