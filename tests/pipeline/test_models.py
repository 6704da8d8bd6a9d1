from datetime import timedelta

import pytest
from django.utils import timezone

from pipeline.models import Worker

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "age,status", [(0, Worker.Status.ONLINE), (20, Worker.Status.STALE), (120, Worker.Status.OFFLINE)]
)
def test_status_follows_the_age_of_the_last_heartbeat(age, status):
    worker = Worker.objects.create(id="w", host="h", last_seen=timezone.now() - timedelta(seconds=age))
    assert worker.status == status


def test_a_worker_that_said_goodbye_is_offline():
    assert Worker.objects.create(id="w", host="h", stopped=True).status == Worker.Status.OFFLINE
