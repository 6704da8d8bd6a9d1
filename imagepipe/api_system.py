"""GET /api/system/: the health of every backing service, for staff."""

from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response

from imagepipe import health


@api_view(["GET"])
@permission_classes([IsAdminUser])
def system(request):
    """Kafka, consumer lag, database, channel layer and workers; each with "ok" and details."""
    return Response(health.system())
