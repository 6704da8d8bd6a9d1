"""workers.admin: the workers' list page costs the same number of queries for 3 rows as for 30; a
worker's row, written by its heartbeats, is shown but never added or changed by hand."""

import pytest

from tests.queries import list_page_queries
from workers.models import Worker

pytestmark = pytest.mark.django_db


def test_a_list_page_does_not_query_per_row(admin_client):
    few, many = list_page_queries(admin_client, "/admin/workers/worker/")
    assert many == few


def test_a_worker_is_shown_but_not_added_or_changed(admin_client):
    Worker.objects.create(id="w1", host="h")
    assert admin_client.get("/admin/workers/worker/add/").status_code == 403
    listed = admin_client.get("/admin/workers/worker/").content.decode()
    assert 'href="/admin/workers/worker/add/"' not in listed
    page = admin_client.get("/admin/workers/worker/w1/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
