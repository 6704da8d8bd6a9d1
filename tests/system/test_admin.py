"""system.admin: the workers' and collectors' list pages cost the same number of queries for 3 rows
as for 30; their rows, written by heartbeats and reports, are shown but never added or changed."""

import pytest

from pipeline.models import Collector, Worker
from tests.queries import list_page_queries

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/admin/pipeline/worker/", "/admin/pipeline/collector/"])
def test_a_list_page_does_not_query_per_row(admin_client, url):
    few, many = list_page_queries(admin_client, url)
    assert many == few


@pytest.mark.parametrize(
    "model,row", [(Worker, {"id": "w1", "host": "h"}), (Collector, {"id": "c1", "host": "h", "pid": 1})]
)
def test_a_row_is_shown_but_not_added_or_changed(admin_client, model, row):
    model.objects.create(**row)
    url = f"/admin/pipeline/{model._meta.model_name}/"
    assert admin_client.get(f"{url}add/").status_code == 403
    assert f'href="{url}add/"' not in admin_client.get(url).content.decode()
    page = admin_client.get(f"{url}{row['id']}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
