import functools
import io
import os
import uuid
from pathlib import Path

import pytest
from channels.layers import channel_layers
from django.conf import settings as django_settings
from django.contrib.auth.hashers import make_password
from django.core.cache import cache
from django.core.management import call_command
from rest_framework.test import APIClient

from tests import tiers
from tests.jobs.factories import SMALL_PHOTO, make_job
from tests.topics import delete_topics


def pytest_configure(config):
    tiers.own_cache_database(django_settings)
    flush_in_lock_order()
    act_as_every_role()


def act_as_every_role() -> None:
    """The suite makes, reads and deletes topics as the broker's admin, and signs and checks
    messages as the roles do (the processes it starts hold only their own role's secrets)."""
    from imagepipe.processes import role_env

    os.environ.update(role_env("admin"))
    for role, key in ("dispatcher", "TASK_SIGNING_KEY"), ("collector", "RESULT_SIGNING_KEY"):
        setattr(django_settings, key, role_env(role).get(key, getattr(django_settings, key)))


def flush_in_lock_order() -> None:
    """Django's flush truncates every table in one statement, in the order of a set; a live
    process's transaction taking two of them the other way round (the system's collector, say,
    while a test ends) could deadlock with it. So the flush takes them in the project's lock
    order (``jobs.models.LOCK_ORDER``), then the rest."""
    from django.db.backends.base.introspection import BaseDatabaseIntrospection

    from jobs.models import LOCK_ORDER

    table_names = BaseDatabaseIntrospection.django_table_names

    def in_lock_order(self, *args, **kwargs):
        tables = table_names(self, *args, **kwargs)
        rank = {name: n for n, name in enumerate(LOCK_ORDER)}
        return sorted(tables, key=lambda name: (rank.get(name, len(rank)), name))

    setattr(BaseDatabaseIntrospection, "django_table_names", in_lock_order)  # noqa: B010 (a method)


def pytest_collection_modifyitems(config, items):
    tiers.mark_broker_tests(items)


@pytest.fixture(scope="session", autouse=True)
def fresh_throttle_counts():
    """User ids restart with each test database; so must their submission counts."""
    cache.clear()


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Files written by a test go to its own temporary folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@functools.cache
def hashed(password: str, hashers: tuple[str, ...]) -> str:
    """A password hashed once per session and hasher list: a hash costs a fifth of a second."""
    return make_password(password)


def make_user(django_user_model, username: str, **fields):
    """A user whose password is ``<username>-pass``."""
    password = hashed(f"{username}-pass", tuple(django_settings.PASSWORD_HASHERS))
    return django_user_model.objects.create(username=username, password=password, **fields)


@pytest.fixture
def alice(django_user_model):
    """A user who is not staff; password "alice-pass"."""
    return make_user(django_user_model, "alice")


@pytest.fixture
def bob(django_user_model):
    """Another user who is not staff, to be refused alice's things; password "bob-pass"."""
    return make_user(django_user_model, "bob")


@pytest.fixture
def staff(django_user_model):
    """A staff user (is_staff, no admin permissions: see pytest-django's admin_client); "staff-pass"."""
    return make_user(django_user_model, "staff", is_staff=True)


@pytest.fixture
def alice_api(alice) -> APIClient:
    """The API as alice (pytest-django's ``client`` stays the Django test client)."""
    client = APIClient()
    client.force_authenticate(alice)
    return client


@pytest.fixture
def bob_api(bob) -> APIClient:
    """The API as bob, who must not reach alice's jobs."""
    client = APIClient()
    client.force_authenticate(bob)
    return client


@pytest.fixture
def kafka_prefix(settings):
    """A fresh topic prefix on the real broker; its topics are deleted afterwards."""
    settings.KAFKA_TOPIC_PREFIX = f"test-{uuid.uuid4().hex[:8]}-"
    yield settings.KAFKA_TOPIC_PREFIX
    delete_topics(settings.KAFKA_TOPIC_PREFIX)


@pytest.fixture
def kafka_topics(kafka_prefix):
    """ImagePipe's topics under a fresh prefix, for code that publishes."""
    call_command("kafka_topics", stdout=io.StringIO())
    return kafka_prefix


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """Each test gets a channel layer of its own, as each web process has one. channels_redis
    keeps per-instance state across event loops (which loop may receive, how many receive, the
    messages buffered per channel), and every async_to_sync call in a test runs a loop of its own."""
    channel_layers.backends.clear()


@pytest.fixture
def job(alice):
    """A small job of alice's, submitted and not yet started: SMALL_PHOTO blurred, in 6 tiles of 64."""
    return make_job(alice, SMALL_PHOTO)


@pytest.fixture
def dispatcher(kafka_topics, settings):
    """A dispatcher in this process, its steps called by the test, on the real database and broker."""
    from pipeline.dispatch import Dispatcher

    settings.DISPATCH_WINDOW_MIN = 4  # no worker is online here: the floor is the window
    return Dispatcher()


class StorageOutage:
    """Storage away, as a disk gone is: MEDIA_ROOT moved aside and a file put at its path (as root,
    permissions stop no write), then put back. ``folder`` takes only that folder away."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def begin(self, folder: str = "") -> None:
        self.path = self.root / folder
        self.path.mkdir(parents=True, exist_ok=True)
        self.path.rename(self.path.with_name(self.path.name + "-away"))
        self.path.write_text("storage is away")

    def end(self) -> None:
        self.path.unlink()
        self.path.with_name(self.path.name + "-away").rename(self.path)

    @property
    def on(self) -> bool:
        return hasattr(self, "path") and self.path.is_file()


@pytest.fixture
def outage(media_root):
    """A storage outage the test begins and ends (ended for it, if it does not)."""
    storage_outage = StorageOutage(Path(media_root))
    yield storage_outage
    if storage_outage.on:
        storage_outage.end()


@pytest.fixture
def collector():
    """A collector in this process, its steps called by the test; its consumer is never subscribed,
    so no broker is needed until it polls."""
    from pipeline.collector import ResultCollector

    running = ResultCollector()
    yield running
    running.consumer.stop()
