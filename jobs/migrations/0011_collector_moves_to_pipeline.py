"""The Collector model moves to the pipeline app; its table stays (pipeline 0001 adopts it)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("jobs", "0010_job_queued_at")]
    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="Collector")]),
    ]
