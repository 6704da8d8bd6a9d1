"""GET /metrics in Prometheus' text format, computed from the database (and Kafka) at each scrape.

Unfinished jobs by status, job runs ended, tiles processed, tile latency, workers by status,
consumer lag, dead letters, refused messages, collectors and storage. Computed from the durable
state rather than process-local counters, so any web process answers for the whole system; and
from what stays small however long the history -- the unfinished jobs (an index of their own) and
the running totals the pipeline keeps as tiles are recorded and jobs end (``jobs.models.Total``) --
so a scrape costs the same on the first day and the thousandth. Open to staff, or to a scraper
presenting ``Authorization: Bearer METRICS_TOKEN``.
"""

from __future__ import annotations

import hmac
from collections import Counter

from django.conf import settings
from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import CollectorRegistry

from jobs.models import Job, Total
from jobs.models import totals as named
from pipeline.collector import REFUSALS
from pipeline.models import Collector, Worker

from . import deadletters, health


class ImagePipeCollector:
    def collect(self):
        jobs = GaugeMetricFamily("imagepipe_jobs", "Unfinished jobs by status.", labels=["status"])
        for status, count in Job.objects.count_unfinished().items():
            jobs.add_metric([status], count)
        yield jobs

        totals = Total.read()
        ended = CounterMetricFamily(
            "imagepipe_jobs_ended", "Job runs ended, by how (each run of a retried job).", labels=["status"]
        )
        for status in Job.TERMINAL:
            ended.add_metric([status], totals.get(named.ended(status), 0))
        yield ended
        tiles = CounterMetricFamily("imagepipe_tiles_processed", "Tiles recorded by the collector.")
        tiles.add_metric([], totals.get(named.TILES_RECORDED, 0))
        yield tiles
        yield latency(totals)

        workers = GaugeMetricFamily("imagepipe_workers", "Workers by heartbeat status.", labels=["status"])
        for status, count in Worker.objects.count_by_status().items():
            workers.add_metric([status], count)
        yield workers

        lag = GaugeMetricFamily(
            "imagepipe_consumer_lag", "Messages not yet committed.", labels=["group", "topic"]
        )
        members = GaugeMetricFamily(
            "imagepipe_consumer_group_members", "Members of each consumer group.", labels=["group"]
        )
        groups = health.consumer_lag().get("groups", [])
        for entry in groups:
            lag.add_metric([entry["group"], entry["topic"]], entry["lag"])
            members.add_metric([entry["group"]], entry["members"])
        yield lag
        yield members
        if groups:  # Kafka answered the lag check: one more question is cheap (if not, another timeout)
            yield dead_letters()
        yield from collectors()


def collectors():
    """Collectors consuming (0 means results pile up unrecorded), and their watchdogs' rebuilds."""
    check = health.collector()
    consuming = GaugeMetricFamily(
        "imagepipe_collectors_consuming", "Live collectors holding partitions and consuming."
    )
    consuming.add_metric([], check["consuming"])
    yield consuming
    rebuilds = GaugeMetricFamily(
        "imagepipe_collector_rebuilds",
        "Consumer rebuilds by a live collector's watchdog.",
        labels=["collector"],
    )
    for entry in check["collectors"]:
        rebuilds.add_metric([entry["id"]], entry["rebuilds"])
    yield rebuilds
    yield refused()
    yield storage()


def refused() -> CounterMetricFamily:
    """Results and heartbeats the collectors refused (dead-lettered on results.dlq), by reason,
    over every collector that has reported."""
    counter = CounterMetricFamily(
        "imagepipe_messages_refused",
        "Messages refused by a collector: unsigned (no valid signature), stale_nonce (no task sent).",
        labels=["reason"],
    )
    totals: Counter[str] = Counter()
    for counters in Collector.objects.values_list("counters", flat=True):
        totals.update({reason: counters.get(reason, 0) for reason in REFUSALS})
    for reason in REFUSALS:
        counter.add_metric([reason], totals[reason])
    return counter


def storage() -> GaugeMetricFamily:
    """1 while storage answers here and no live collector waits for it (alert on 0)."""
    gauge = GaugeMetricFamily("imagepipe_storage_ok", "Storage answers and no collector waits for it.")
    gauge.add_metric([], int(health.storage()["ok"]))
    return gauge


def dead_letters() -> GaugeMetricFamily:
    """Tasks the workers gave up on, parked on tasks.dlq (no sample if Kafka stops answering)."""
    gauge = GaugeMetricFamily("imagepipe_dead_letters", "Messages on the dead-letter topic tasks.dlq.")
    try:
        gauge.add_metric([], deadletters.count())
    except deadletters.Unreachable:
        pass
    return gauge


def latency(totals: dict[str, int]) -> HistogramMetricFamily:
    """Tile processing time on the workers, in seconds, over every tile recorded with one."""
    histogram = HistogramMetricFamily("imagepipe_tile_duration_seconds", "Tile processing time on a worker.")
    buckets = [(str(ms / 1000), totals.get(named.bucket(ms), 0)) for ms in named.TILE_BUCKETS_MS]
    histogram.add_metric(
        [],
        [*buckets, ("+Inf", totals.get(named.TILE_MS_COUNT, 0))],
        totals.get(named.TILE_MS_SUM, 0) / 1000,
    )
    return histogram


def allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(header.encode(), f"Bearer {token}".encode()):
        return True
    return request.user.is_authenticated and request.user.is_staff


def metrics(request):
    if not allowed(request):
        status = 403 if request.user.is_authenticated else 401
        return HttpResponse("metrics are for staff or a scraper with METRICS_TOKEN\n", status=status)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ImagePipeCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
