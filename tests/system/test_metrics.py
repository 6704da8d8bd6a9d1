"""/metrics in Prometheus' text format, /ready/ and /health/ for orchestrators."""

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from pipeline.collector import record_result
from pipeline.models import Collector, Worker
from tests.images import photo
from tests.jobs.factories import make_job, results_for

pytestmark = [pytest.mark.django_db, pytest.mark.kafka]  # /metrics reports consumer lag


def scrape(client, **headers):
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    return {family.name: family for family in text_string_to_metric_families(response.content.decode())}


def test_metrics_describe_jobs_tiles_latency_workers_and_lag(client, alice, staff):
    image = photo("camera.png").crop((0, 0, 100, 60))
    job = make_job(alice, image)
    for value in results_for(job, image):
        record_result(value)
    make_job(job.owner, image)  # a second one, still queued
    consuming_collector()
    client.force_login(staff)
    families = scrape(client)

    jobs = {s.labels["status"]: s.value for s in families["imagepipe_jobs"].samples}
    assert jobs["queued"] == 1 and "done" not in jobs  # the unfinished only (test_metrics_cost.py)
    ended = {s.labels["status"]: s.value for s in families["imagepipe_jobs_ended"].samples}
    assert ended["done"] == 1 and ended["failed"] == 0
    assert families["imagepipe_tiles_processed"].samples[0].value == job.tiles_total == 2
    latency = {s.name: s for s in families["imagepipe_tile_duration_seconds"].samples}
    assert latency["imagepipe_tile_duration_seconds_count"].value == 2
    assert {s.labels["status"] for s in families["imagepipe_workers"].samples} == set(Worker.Status)
    assert {s.labels["group"] for s in families["imagepipe_consumer_lag"].samples} == {"workers", "collector"}
    assert {s.labels["group"] for s in families["imagepipe_consumer_group_members"].samples} == {
        "workers",
        "collector",
    }
    assert families["imagepipe_collectors_consuming"].samples[0].value == 1
    assert families["imagepipe_collector_rebuilds"].samples[0].labels == {"collector": "c1"}
    assert families["imagepipe_storage_ok"].samples[0].value == 1


def test_metrics_are_for_staff_or_the_scraper_token(client, settings, alice):
    assert client.get("/metrics").status_code == 401
    client.force_login(alice)
    assert client.get("/metrics").status_code == 403
    settings.METRICS_TOKEN = "scrape-secret"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    client.logout()
    assert "imagepipe_jobs" in scrape(client, HTTP_AUTHORIZATION="Bearer scrape-secret")


def consuming_collector():
    return Collector.objects.create(id="c1", host="h", pid=1, partitions=["results[0]"])


def test_health_asks_the_process_alone_while_ready_asks_the_services(
    client, settings, django_assert_num_queries
):
    """Liveness is not readiness: a broker (or database) outage leaves /health/ at 200, untouched."""
    settings.KAFKA_BOOTSTRAP_SERVERS = "127.0.0.1:1"
    with django_assert_num_queries(0):
        response = client.get("/health/")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert client.get("/ready/").status_code == 503


def test_ready_says_which_service_is_missing(client, settings):
    consuming_collector()
    assert client.get("/ready/").json() == {"ready": True, "failing": []}
    settings.KAFKA_BOOTSTRAP_SERVERS = "127.0.0.1:1"
    response = client.get("/ready/")
    assert response.status_code == 503
    assert response.json()["failing"] == ["kafka"]


def test_ready_tells_why_only_to_staff_and_the_scraper(client, admin_client, settings):
    settings.METRICS_TOKEN = "scrape-secret"
    settings.KAFKA_BOOTSTRAP_SERVERS = "127.0.0.1:1"
    consuming_collector()
    assert client.get("/ready/").json() == {"ready": False, "failing": ["kafka"]}
    why = {"kafka": "Failed to get metadata: Local: Broker transport failure"}
    assert admin_client.get("/ready/").json()["errors"] == why
    assert client.get("/ready/", HTTP_AUTHORIZATION="Bearer scrape-secret").json()["errors"] == why


def test_ready_is_not_ready_while_no_collector_consumes(admin_client, settings):
    client = admin_client  # staff: it is told why
    response = client.get("/ready/")
    assert response.status_code == 503
    assert response.json() == {
        "ready": False,
        "failing": ["collector"],
        "errors": {"collector": "no collector has reported in the last 30 s"},
    }
    Collector.objects.create(
        id="c1",
        host="h",
        pid=1,
        partitions=["results[0]"],
        lag=199,
        last_message_at=timezone.now() - timedelta(minutes=25),
    )
    assert client.get("/ready/").json()["errors"] == {
        "collector": "the collector holds its partitions but has stopped consuming"
    }


def test_a_collector_waiting_for_storage_makes_the_system_not_ready_and_the_gauge_zero(
    client, admin_client, settings
):
    settings.METRICS_TOKEN = "scrape-secret"
    Collector.objects.create(
        id="c1", host="h", pid=1, partitions=["results[0]"], storage_error="writing tiles/j/0-0.tile: away"
    )
    response = client.get("/ready/")
    assert response.status_code == 503 and "storage" in response.json()["failing"]
    why = admin_client.get("/ready/").json()["errors"]["storage"]
    assert why == "collector c1 is waiting for storage: writing tiles/j/0-0.tile: away"
    families = scrape(client, HTTP_AUTHORIZATION="Bearer scrape-secret")
    assert families["imagepipe_storage_ok"].samples[0].value == 0
