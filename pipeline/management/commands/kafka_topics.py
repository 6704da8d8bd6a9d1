import time

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions, NewTopic
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from pipeline import kafka


class Command(BaseCommand):
    help = (
        "Create ImagePipe's Kafka topics, or bring existing ones up to their partitions and config, and "
        "grant each role (dispatcher, worker, collector, web) its ACLs. Run with the admin's credentials."
    )

    def handle(self, *args, **options):
        admin = kafka.admin()
        specs = kafka.topic_specs()
        existing = {name: len(t.partitions) for name, t in admin.list_topics(timeout=15).topics.items()}
        created = [
            NewTopic(
                name,
                num_partitions=spec["partitions"],
                replication_factor=settings.KAFKA_REPLICATION_FACTOR,
                config=spec["config"],
            )
            for name, spec in specs.items()
            if name not in existing
        ]
        grown = [
            NewPartitions(name, spec["partitions"])
            for name, spec in specs.items()
            if 0 < existing.get(name, 0) < spec["partitions"]
        ]
        configured = [
            ConfigResource(
                ConfigResource.Type.TOPIC,
                name,
                incremental_configs=[
                    ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
                    for key, value in spec["config"].items()
                ],
            )
            for name, spec in specs.items()
            if name in existing
        ]
        wait(created and admin.create_topics(created), "create")
        wait(grown and admin.create_partitions(grown), "add partitions to")
        wait(configured and admin.incremental_alter_configs(configured), "configure")
        await_metadata(admin, {name: spec["partitions"] for name, spec in specs.items()})
        self.grant(admin)
        for name, spec in specs.items():
            state = "exists" if name in existing else "created"
            partitions = max(existing.get(name, 0), spec["partitions"])
            self.stdout.write(f"{name}: {state}, {partitions} partitions, {spec['config']}")
        self.stdout.write(f"broker: {settings.KAFKA_BOOTSTRAP_SERVERS}")

    def grant(self, admin) -> None:
        """Each role's ACLs (creating one that exists changes nothing). A broker with no authorizer
        (a development broker without security) has none to give: said, not failed."""
        bindings = kafka.acl_bindings()
        try:
            for future in admin.create_acls(bindings).values():
                future.result()
        except KafkaException as exc:
            if exc.args and exc.args[0].code() == KafkaError.SECURITY_DISABLED:
                self.stdout.write("acls: the broker has no authorizer; every client may do anything")
                return
            raise CommandError(f"could not grant the roles' ACLs: {exc}") from exc
        roles = sorted({binding.principal for binding in bindings})
        self.stdout.write(f"acls: {len(bindings)} granted to {', '.join(roles)}")


def await_metadata(admin, partitions: dict[str, int], timeout: float = 30) -> None:
    """Return once the broker's metadata shows every topic with its partitions, each with a leader.

    Creating topics or partitions is acknowledged before the metadata says so; whatever starts
    next (a worker, or anything that counts the partitions) would otherwise see the old shape.
    """
    deadline = time.monotonic() + timeout
    while True:
        topics = admin.list_topics(timeout=10).topics
        behind = [
            name
            for name, count in partitions.items()
            if name not in topics
            or len(topics[name].partitions) < count
            or any(p.leader < 0 for p in topics[name].partitions.values())
        ]
        if not behind:
            return await_leaders(partitions, deadline)
        if time.monotonic() > deadline:
            raise CommandError(f"the broker's metadata still lacks {', '.join(behind)} after {timeout:g} s")
        time.sleep(0.2)


def await_leaders(partitions: dict[str, int], deadline: float) -> None:
    """Return once each partition's leader answers for it: the metadata can name a leader that
    does not know it leads yet (NOT_LEADER_FOR_PARTITION to the first reads)."""
    probe = kafka.probe("kafka-topics")
    try:
        for name, count in partitions.items():
            for partition in range(count):
                try:
                    kafka.watermarks(probe, TopicPartition(name, partition), deadline)
                except KafkaException as exc:
                    raise CommandError(f"{name}[{partition}]: no leader answers: {exc}") from None
    finally:
        probe.close()


def wait(futures, verb: str) -> None:
    for target, future in (futures or {}).items():
        try:
            future.result()
        except Exception as exc:
            name = getattr(target, "name", target)
            raise CommandError(f"could not {verb} topic {name}: {exc}") from exc
