"""List pages cost the same number of queries for 3 rows as for 30: no N+1."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs.models import Collector
from tests.images import noise

from .factories import make_job

pytestmark = pytest.mark.django_db

PAGES = ["/", "/admin/jobs/job/", "/admin/jobs/tile/", "/admin/workers/worker/", "/admin/jobs/collector/"]


def queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


@pytest.mark.parametrize("url", PAGES)
def test_a_list_page_does_not_query_per_row(client, django_user_model, url):
    from workers.models import Worker

    staff = django_user_model.objects.create_superuser("root", password="x")
    owners = [django_user_model.objects.create_user(f"user{n}") for n in range(3)]
    client.force_login(staff)

    def add(count):
        for n in range(count):
            make_job(owners[n % 3], noise(20, 20), tile_size=16)
            Worker.objects.create(id=f"w{Worker.objects.count()}", host="h")
            Collector.objects.create(id=f"c{Collector.objects.count()}", host="h", pid=1)

    add(3)
    few = queries(client, url)
    add(27)
    assert queries(client, url) == few


def test_the_job_page_costs_a_fixed_number_of_queries(client, django_user_model):
    owner = django_user_model.objects.create_user("owner")
    client.force_login(owner)
    small, large = (
        make_job(owner, noise(20, 20), tile_size=16),
        make_job(owner, noise(200, 200), tile_size=16),
    )
    assert queries(client, f"/jobs/{small.pk}/") == queries(client, f"/jobs/{large.pk}/")
