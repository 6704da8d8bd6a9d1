"""The JSON API for jobs: list, create, retrieve, download the result."""

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action, api_view
from rest_framework.response import Response

from imagepipe.core.operations import catalogue
from imagepipe.core.output import FORMATS

from . import assembly, previews
from .events import push_status
from .models import Job, Tile
from .serializers import JobSerializer, TileSerializer
from .services import submit_job
from .uploads import UploadError


@api_view(["GET"])
def operations(request):
    """The operation catalogue: each operation's kind and parameters with type, range and default."""
    return Response(catalogue())


class JobViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    serializer_class = JobSerializer

    def get_queryset(self):
        return Job.objects.visible_to(self.request.user)

    def create(self, request):
        try:
            job = submit_job(
                request.user,
                request.FILES.get("image"),
                request.data.get("operations"),
                request.data.get("tile_size"),
                request.data.get("output_format"),
                request.data.get("quality"),
            )
        except UploadError as exc:
            return Response({"error": str(exc)}, status=exc.status)
        return Response(self.get_serializer(job).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, pk=None):
        """Delete the job with its original, tiles and result."""
        assembly.delete(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        job = self.get_object()
        if not job.cancel():
            return conflict(f"the job is {job.status}; only an unfinished job can be cancelled")
        push_status(job)
        return Response(self.get_serializer(job).data)

    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        job = self.get_object()
        if not assembly.retry(job):
            return conflict(f"the job is {job.status}; only a failed or cancelled job can be retried")
        job.refresh_from_db()
        return Response(self.get_serializer(job).data)

    @action(detail=True, url_path="tiles", url_name="tiles")
    def tiles(self, request, pk=None):
        """Every tile of the job with who did it and where it travelled (not paginated)."""
        job = self.get_object()
        tiles = list(job.tiles.all())
        for tile in tiles:
            tile.job = job  # one job for all: no query per tile
        return Response(TileSerializer(tiles, many=True).data)

    @action(detail=True, url_path=r"tiles/(?P<stage>\d+)/(?P<index>\d+)/preview", url_name="tile-preview")
    def tile_preview(self, request, pk=None, stage=None, index=None):
        """A finished tile's pixels, small, for the live mosaic (gone once the job is done)."""
        tile = self.get_object().tiles.filter(stage=stage, index=index, status=Tile.Status.DONE).first()
        if tile is None or not tile.result or not default_storage.exists(tile.result.name):
            raise Http404("no stored pixels for this tile")
        return image_response(*previews.tile_preview(tile))

    @action(detail=True, url_path=r"preview/(?P<which>original|result)", url_name="preview")
    def preview(self, request, pk=None, which=None):
        """The original or the result, fitted in ``?size=`` 160 or 1000 pixels."""
        job = self.get_object()
        if which == "result" and job.status != Job.Status.DONE:
            return conflict(f"the job is {job.status}; no result yet")
        size = int(request.query_params.get("size", previews.SIZES[0]))
        if size not in previews.SIZES:
            return Response({"error": f"size must be one of {list(previews.SIZES)}"}, status=400)
        return image_response(*previews.job_preview(job, which, size))

    @action(detail=True, url_path="result", url_name="result")
    def result(self, request, pk=None):
        job = self.get_object()
        if job.status != Job.Status.DONE or not job.result:
            return conflict(f"the job is {job.status}; no result yet")
        output = FORMATS[job.output_format]
        return download(job.result, f"{job.pk}{output.extension}", output.content_type)


def image_response(data: bytes, content_type: str) -> HttpResponse:
    response = HttpResponse(data, content_type=content_type)
    response["Cache-Control"] = "private, max-age=3600"
    return response


def conflict(message: str) -> Response:
    return Response({"error": message}, status=status.HTTP_409_CONFLICT)


def download(field_file, filename: str, content_type: str) -> FileResponse:
    try:
        handle = field_file.open("rb")
    except FileNotFoundError:
        raise Http404("file missing from storage") from None
    return FileResponse(handle, as_attachment=True, filename=filename, content_type=content_type)
