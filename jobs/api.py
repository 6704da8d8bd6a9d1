"""The JSON API for jobs: list, create, retrieve, download the result."""

from django.http import FileResponse, Http404
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action, api_view
from rest_framework.response import Response

from imagepipe.core.operations import catalogue
from imagepipe.core.output import FORMATS

from .models import Job
from .serializers import JobSerializer, TileSerializer
from .services import submit_job
from .uploads import UploadError


@api_view(["GET"])
def operations(request):
    """The operation catalogue: each operation's kind and parameters with type, range and default."""
    return Response(catalogue())


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
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

    @action(detail=True, url_path="tiles", url_name="tiles")
    def tiles(self, request, pk=None):
        """Every tile of the job with who did it and where it travelled (not paginated)."""
        return Response(TileSerializer(self.get_object().tiles.all(), many=True).data)

    @action(detail=True, url_path="result", url_name="result")
    def result(self, request, pk=None):
        job = self.get_object()
        if job.status != Job.Status.DONE or not job.result:
            return Response(
                {"error": f"the job is {job.status}; no result yet"}, status=status.HTTP_409_CONFLICT
            )
        output = FORMATS[job.output_format]
        return download(job.result, f"{job.pk}{output.extension}", output.content_type)


def download(field_file, filename: str, content_type: str) -> FileResponse:
    try:
        handle = field_file.open("rb")
    except FileNotFoundError:
        raise Http404("file missing from storage") from None
    return FileResponse(handle, as_attachment=True, filename=filename, content_type=content_type)
