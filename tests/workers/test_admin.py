"""workers.admin: the workers' list page costs the same number of queries for 3 rows as for 30."""

import pytest

from tests.queries import list_page_queries

pytestmark = pytest.mark.django_db


def test_a_list_page_does_not_query_per_row(admin_client):
    few, many = list_page_queries(admin_client, "/admin/workers/worker/")
    assert many == few
