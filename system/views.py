"""GET /api/system/ (staff), /health/ and /ready/ (open): the health checks as HTTP answers."""

from django.http import JsonResponse
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response

from . import health


@extend_schema(responses=dict)
@api_view(["GET"])
@permission_classes([IsAdminUser])
def system(request):
    """Kafka, consumer lag, database, channel layer and workers; each with "ok" and details."""
    return Response(health.system())


def alive(request):
    """GET /health/: open to all (load balancers, orchestrators); 503 when the database is down."""
    database = health.database()
    return JsonResponse(
        {"status": "ok" if database["ok"] else "unavailable"}, status=200 if database["ok"] else 503
    )


def ready(request):
    """GET /ready/: open to all; 200 once the database, Kafka and the channel layer all answer
    and a collector is consuming (without one, jobs are accepted but never finish)."""
    checks = {
        "database": health.database(),
        "kafka": health.kafka(),
        "channel_layer": health.channel_layer(),
        "collector": health.collector(),
    }
    failing = sorted(name for name, check in checks.items() if not check["ok"])
    errors = {name: checks[name].get("error", "") for name in failing}
    return JsonResponse(
        {"ready": not failing, "failing": failing, "errors": errors}, status=503 if failing else 200
    )
