"""`manage.py kafka_topics` against the real broker."""

import io

from confluent_kafka.admin import ConfigResource
from django.core.management import call_command

from pipeline import kafka


def describe(name):
    admin = kafka.admin()
    partitions = len(admin.list_topics(name, timeout=10).topics[name].partitions)
    (future,) = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, name)]).values()
    return partitions, {key: entry.value for key, entry in future.result().items()}


def test_it_creates_every_topic_with_an_explicit_message_limit(kafka_prefix, settings):
    call_command("kafka_topics", stdout=io.StringIO())
    for name, partitions in (("tasks", 4), ("results", 2), ("heartbeats", 1), ("tasks.dlq", 1)):
        count, config = describe(kafka_prefix + name)
        assert count == partitions
        if name != "heartbeats":
            assert config["max.message.bytes"] == str(settings.KAFKA_MAX_MESSAGE_BYTES + 64 * 1024)


def test_running_it_again_grows_partitions_and_keeps_the_rest(kafka_prefix, settings):
    call_command("kafka_topics", stdout=io.StringIO())
    settings.KAFKA_TASK_PARTITIONS = 6
    call_command("kafka_topics", stdout=io.StringIO())
    assert describe(kafka_prefix + "tasks")[0] == 6
    assert describe(kafka_prefix + "results")[0] == 2
