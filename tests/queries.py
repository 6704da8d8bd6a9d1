"""What a page costs in database queries, and whether that grows with the rows it lists."""

from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pipeline.models import Collector, Worker
from tests.images import noise
from tests.jobs.factories import make_job


def queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def list_page_queries(client, url) -> tuple[int, int]:
    """The queries ``url`` costs with 3 jobs, workers and collectors, then with 30 (of 3 owners)."""
    owners = [get_user_model().objects.create_user(f"user{n}") for n in range(3)]

    def add(count):
        for n in range(count):
            make_job(owners[n % 3], noise(20, 20), tile_size=16)
            Worker.objects.create(id=f"w{Worker.objects.count()}", host="h")
            Collector.objects.create(id=f"c{Collector.objects.count()}", host="h", pid=1)

    add(3)
    few = queries(client, url)
    add(27)
    return few, queries(client, url)
