"""/metrics in Prometheus' text format, /ready/ and /health/ for orchestrators."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from jobs.collector import record_result
from tests.images import photo
from tests.jobs.factories import make_job
from tests.jobs.test_collector import results_for

pytestmark = pytest.mark.django_db


def scrape(client, **headers):
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    return {family.name: family for family in text_string_to_metric_families(response.content.decode())}


def test_metrics_describe_jobs_tiles_latency_workers_and_lag(client, django_user_model):
    image = photo("camera.png").crop((0, 0, 100, 60))
    job = make_job(django_user_model.objects.create_user("alice"), image)
    for value in results_for(job, image):
        record_result(value)
    make_job(job.owner, image)  # a second one, still queued
    client.force_login(django_user_model.objects.create_user("root", is_staff=True))
    families = scrape(client)

    jobs = {s.labels["status"]: s.value for s in families["imagepipe_jobs"].samples}
    assert jobs["done"] == 1 and jobs["queued"] == 1 and jobs["failed"] == 0
    assert families["imagepipe_tiles_processed"].samples[0].value == job.tiles_total == 2
    latency = {s.name: s for s in families["imagepipe_tile_duration_seconds"].samples}
    assert latency["imagepipe_tile_duration_seconds_count"].value == 2
    assert {"online", "stale", "offline"} == {
        s.labels["status"] for s in families["imagepipe_workers"].samples
    }
    assert {s.labels["group"] for s in families["imagepipe_consumer_lag"].samples} == {"workers", "collector"}


def test_metrics_are_for_staff_or_the_scraper_token(client, settings, django_user_model):
    assert client.get("/metrics").status_code == 401
    client.force_login(django_user_model.objects.create_user("alice"))
    assert client.get("/metrics").status_code == 403
    settings.METRICS_TOKEN = "scrape-secret"
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    client.logout()
    assert "imagepipe_jobs" in scrape(client, HTTP_AUTHORIZATION="Bearer scrape-secret")


def test_ready_says_which_service_is_missing(client, settings):
    assert client.get("/ready/").json() == {"ready": True, "failing": []}
    settings.KAFKA_BOOTSTRAP_SERVERS = "127.0.0.1:1"
    response = client.get("/ready/")
    assert response.status_code == 503 and response.json() == {"ready": False, "failing": ["kafka"]}
