from confluent_kafka.admin import NewTopic
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from imagepipe import kafka


class Command(BaseCommand):
    help = "Create ImagePipe's Kafka topics (idempotent) with their explicit config."

    def handle(self, *args, **options):
        admin = kafka.admin()
        specs = kafka.topic_specs()
        existing = admin.list_topics(timeout=15).topics
        wanted = [
            NewTopic(
                name,
                num_partitions=spec["partitions"],
                replication_factor=settings.KAFKA_REPLICATION_FACTOR,
                config=spec["config"],
            )
            for name, spec in specs.items()
            if name not in existing
        ]
        for name, future in (admin.create_topics(wanted) if wanted else {}).items():
            try:
                future.result()
            except Exception as exc:
                raise CommandError(f"could not create topic {name}: {exc}") from exc
        for name, spec in specs.items():
            state = "created" if name in {t.topic for t in wanted} else "exists"
            partitions = len(existing[name].partitions) if name in existing else spec["partitions"]
            self.stdout.write(f"{name}: {state}, {partitions} partitions, {spec['config']}")
        self.stdout.write(f"broker: {settings.KAFKA_BOOTSTRAP_SERVERS}")
