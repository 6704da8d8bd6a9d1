"""jobs.admin: the list pages of jobs, tiles and collectors cost the same number of queries for 3 rows as
for 30 (its actions are tested with jobs.actions, in test_actions.py)."""

import pytest

from tests.queries import list_page_queries

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/admin/jobs/job/", "/admin/jobs/tile/", "/admin/jobs/collector/"])
def test_a_list_page_does_not_query_per_row(admin_client, url):
    few, many = list_page_queries(admin_client, url)
    assert many == few
