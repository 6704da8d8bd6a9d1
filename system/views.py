"""GET /api/system/ (staff), /health/ and /ready/ (open): the health checks as HTTP answers;
/dead-letters/ and /api/dead-letters/ (staff): the tasks workers parked on tasks.dlq."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import render
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response

from . import deadletters, health, metrics


@extend_schema(responses=dict)
@api_view(["GET"])
@permission_classes([IsAdminUser])
def system(request):
    """Kafka, consumer lag, database, channel layer, storage, collectors and workers; each with
    "ok" and details."""
    return Response(health.system())


def alive(request):
    """GET /health/ (liveness): open to all; 200 whenever the process answers. It asks no backing
    service: a database or broker outage is /ready/'s to report, and must never have a web
    process that is fine restarted for it."""
    return JsonResponse({"status": "ok"})


def ready(request):
    """GET /ready/: open to all; 200 once the database, Kafka, the channel layer and storage all
    answer and a collector is consuming (without one, or while one waits for storage, jobs are
    accepted but don't finish). Which checks
    fail is for anyone; why (the services' own error text, which names hosts and ports) only for
    staff or a scraper with METRICS_TOKEN."""
    checks = {
        "database": health.database(),
        "kafka": health.kafka(),
        "channel_layer": health.channel_layer(),
        "storage": health.storage(),
        "collector": health.collector(),
    }
    failing = sorted(name for name, check in checks.items() if not check["ok"])
    answer: dict[str, object] = {"ready": not failing, "failing": failing}
    if metrics.allowed(request):
        answer["errors"] = {name: checks[name].get("error", "") for name in failing}
    return JsonResponse(answer, status=503 if failing else 200)


@login_required
def dead_letters_page(request):
    if not request.user.is_staff:
        raise PermissionDenied("the dead-letter topic is for staff")
    limit = _limit(request)
    try:
        reading = deadletters.latest(limit)
    except deadletters.Unreachable as exc:
        context = {"error": f"broker unreachable: {exc}", "limit": limit}
        return render(request, "system/dlq.html", context, status=503)
    return render(request, "system/dlq.html", {"reading": reading, "limit": limit})


@extend_schema(
    parameters=[OpenApiParameter("limit", int, description=f"1 to {deadletters.MAX_LIMIT}")],
    responses=dict,
)
@api_view(["GET"])
@permission_classes([IsAdminUser])
def dead_letters(request):
    """The newest tasks parked on tasks.dlq across its partitions, newest first, with the reason,
    worker and source headers and the job and tile when the task decodes; 503 if Kafka is down."""
    limit = _limit(request)
    try:
        reading = deadletters.latest(limit)
    except deadletters.Unreachable as exc:
        return Response({"error": f"broker unreachable: {exc}"}, status=503)
    messages = [
        {
            **letter.as_dict(),
            "job_url": reverse("job-detail", args=[letter.job]) if letter.job_exists else None,
        }
        for letter in reading.letters
    ]
    return Response({"total": reading.total, "limit": limit, "messages": messages})


def _limit(request) -> int:
    """?limit=, kept between 1 and MAX_LIMIT; LIMIT when absent or not a number."""
    try:
        return min(max(int(request.GET.get("limit", deadletters.LIMIT)), 1), deadletters.MAX_LIMIT)
    except ValueError:
        return deadletters.LIMIT
