"""Worker (from the old ``workers`` app) and Collector (from ``jobs``), their tables kept.

The models' state is created here without touching the database; a table is created only where
it is missing: ``jobs_collector`` always exists (jobs 0006 made it), ``workers_worker`` exists on
a database that ran the old ``workers`` app and is made here on a new one.
"""

import django.utils.timezone
from django.db import migrations, models


def create_missing_tables(apps, schema_editor):
    existing = set(schema_editor.connection.introspection.table_names())
    for name in ("Worker", "Collector"):
        model = apps.get_model("pipeline", name)
        if model._meta.db_table not in existing:
            schema_editor.create_model(model)


WORKER = migrations.CreateModel(
    name="Worker",
    fields=[
        ("id", models.CharField(max_length=255, primary_key=True, serialize=False)),
        ("host", models.CharField(max_length=255)),
        ("pid", models.PositiveIntegerField(default=0)),
        ("first_seen", models.DateTimeField(default=django.utils.timezone.now)),
        ("last_seen", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
        ("tiles_done", models.PositiveIntegerField(default=0)),
        ("current_job", models.CharField(blank=True, max_length=64)),
        ("partitions", models.JSONField(default=list)),
        ("stopped", models.BooleanField(default=False)),
        ("counters", models.JSONField(blank=True, default=dict)),
    ],
    options={"ordering": ["-last_seen"], "db_table": "workers_worker"},
)
COLLECTOR = migrations.CreateModel(
    name="Collector",
    fields=[
        ("id", models.CharField(max_length=255, primary_key=True, serialize=False)),
        ("host", models.CharField(max_length=255)),
        ("pid", models.PositiveIntegerField()),
        ("started_at", models.DateTimeField(default=django.utils.timezone.now)),
        ("last_seen", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
        ("last_message_at", models.DateTimeField(blank=True, null=True)),
        ("partitions", models.JSONField(default=list)),
        ("lag", models.BigIntegerField(default=0)),
        ("rebuilds", models.PositiveIntegerField(default=0)),
        ("stalled", models.CharField(blank=True, max_length=255)),
        ("stopped", models.BooleanField(default=False)),
    ],
    options={"ordering": ["-last_seen"], "db_table": "jobs_collector"},
)


class Migration(migrations.Migration):
    initial = True
    dependencies = [("jobs", "0011_collector_moves_to_pipeline")]
    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[WORKER, COLLECTOR]),
        migrations.RunPython(create_missing_tables, migrations.RunPython.noop),
    ]
