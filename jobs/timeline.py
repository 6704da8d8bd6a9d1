"""Which worker did which tiles when: ``GET /api/timeline/``, and tiles per second by worker.

A span is a recorded tile: it ends when the collector recorded it (``finished_at``) and starts
``duration_ms`` (the worker's own processing time) before that, so its start is late by the
tile's trip through Kafka. Spans come from the ``tiles`` table, not from the workers: a tile's
story stays the same however often it is asked for.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.db.models import Count, F, FloatField, Func
from django.db.models.functions import Floor
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.response import Response

from .models import Job, Tile

MAX_SPANS = 2000  # the latest ones; ``truncated`` says when there were more
MAX_SECONDS = 3600
DEFAULT_SECONDS = 300
BUCKETS = 60  # throughput buckets at most, whatever the window
RATE_SECONDS = 10  # the window of a worker's tiles per second


class TimelineQuery(serializers.Serializer):
    job = serializers.UUIDField(required=False, help_text="one job's tiles (its owner or staff)")
    seconds = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_SECONDS,
        help_text=f"the last seconds (default {DEFAULT_SECONDS}; for a job, all of it)",
    )


@extend_schema(parameters=[TimelineQuery], responses=OpenApiTypes.OBJECT)
@api_view(["GET"])
def timeline(request):
    """Tile spans per worker and tiles finished per bucket: one job's (``?job=``), or the last
    ``?seconds=`` across the system (staff: every job's; other users: their own jobs'). At most
    MAX_SPANS spans, the latest; ``truncated`` is true when there were more."""
    query = TimelineQuery(data=request.query_params)
    query.is_valid(raise_exception=True)
    seconds = query.validated_data.get("seconds")
    now = timezone.now()
    if "job" in query.validated_data:
        job = get_object_or_404(Job.objects.visible_to(request.user), pk=query.validated_data["job"])
        until = job.finished_at or now
        since = until - timedelta(seconds=seconds) if seconds else job.created_at
        tiles = Tile.objects.filter(job=job)
    else:
        until, since = now, now - timedelta(seconds=seconds or DEFAULT_SECONDS)
        tiles = Tile.objects.all() if request.user.is_staff else Tile.objects.filter(job__owner=request.user)
    return Response(describe(tiles.filter(finished_at__gte=since, finished_at__lte=until), since, until))


def describe(tiles, since: datetime, until: datetime) -> dict:
    """The timeline of ``tiles`` (already narrowed to the window) between ``since`` and ``until``."""
    tiles = tiles.exclude(worker="").order_by()
    latest = list(
        tiles.order_by("-finished_at", "-pk").values_list(
            "worker", "job_id", "stage", "index", "state", "finished_at", "duration_ms"
        )[: MAX_SPANS + 1]
    )
    spans = [
        {
            "worker": worker,
            "job": str(job),
            "stage": stage,
            "index": index,
            "state": state,
            "start": finished - timedelta(milliseconds=duration or 0),
            "end": finished,
        }
        for worker, job, stage, index, state, finished, duration in reversed(latest[:MAX_SPANS])
    ]
    workers = tiles.values_list("worker").annotate(n=Count("pk")).order_by("worker")
    bucket_seconds, counts = throughput(tiles, since, until)
    return {
        "since": since,
        "until": until,
        "workers": [{"id": worker, "tiles": n} for worker, n in workers],
        "spans": spans,
        "truncated": len(latest) > MAX_SPANS,
        "max_spans": MAX_SPANS,
        "bucket_seconds": bucket_seconds,
        "throughput": [
            {"start": since + timedelta(seconds=n * bucket_seconds), "tiles": count}
            for n, count in enumerate(counts)
        ],
    }


def throughput(tiles, since: datetime, until: datetime) -> tuple[int, list[int]]:
    """Tiles finished per bucket of whole seconds from ``since`` (at most BUCKETS), counted in SQL."""
    width = max(1, math.ceil((until - since).total_seconds() / BUCKETS))
    count = max(1, math.ceil((until - since).total_seconds() / width))
    epoch = Func(F("finished_at"), template="EXTRACT(EPOCH FROM %(expressions)s)", output_field=FloatField())
    buckets = Floor((epoch - since.timestamp()) / width)
    counted = dict(tiles.annotate(bucket=buckets).values_list("bucket").annotate(n=Count("pk")))
    return width, [counted.get(n, 0) for n in range(count)]


def tiles_per_second(seconds: int = RATE_SECONDS) -> dict[str, float]:
    """Each worker's recorded tiles per second over the last ``seconds``: steady between
    heartbeats, unlike the difference of two cumulative counts a poll apart."""
    since = timezone.now() - timedelta(seconds=seconds)
    recorded = Tile.objects.filter(finished_at__gte=since).exclude(worker="").order_by()
    return {worker: n / seconds for worker, n in recorded.values_list("worker").annotate(n=Count("pk"))}
