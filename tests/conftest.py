import gc
import io
import uuid

import pytest
from django.core.cache import cache
from django.core.management import call_command

from imagepipe import kafka


@pytest.fixture(scope="session", autouse=True)
def fresh_throttle_counts():
    """User ids restart with each test database; so must their submission counts."""
    cache.clear()


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Files written by a test go to its own temporary folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def kafka_prefix(settings):
    """A fresh topic prefix on the real broker; its topics are deleted afterwards."""
    settings.KAFKA_TOPIC_PREFIX = f"test-{uuid.uuid4().hex[:8]}-"
    yield settings.KAFKA_TOPIC_PREFIX
    delete_topics(settings.KAFKA_TOPIC_PREFIX)


def delete_topics(prefix: str) -> None:
    """Leave the broker as it was: a test's topics go when it is done."""
    admin = kafka.admin()
    mine = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    for future in admin.delete_topics(mine).values() if mine else ():
        future.result()
    del admin
    gc.collect()  # here, not on a librdkafka thread (see imagepipe.kafka.collected)


@pytest.fixture
def kafka_topics(kafka_prefix):
    """ImagePipe's topics under a fresh prefix, for code that publishes."""
    call_command("kafka_topics", stdout=io.StringIO())
    return kafka_prefix
