"""A tile's state is one field: queued, sent, done or failed (it was ``status`` pending/done/failed,
with queued and sent told apart by ``dispatched_at``)."""

from django.db import migrations, models

FORWARD = """
UPDATE jobs_tile SET state = CASE WHEN dispatched_at IS NULL THEN 'queued' ELSE 'sent' END
WHERE state = 'pending'
"""
BACKWARD = "UPDATE jobs_tile SET state = 'pending' WHERE state IN ('queued', 'sent')"


class Migration(migrations.Migration):
    dependencies = [("jobs", "0012_pendingcancellation")]
    operations = [
        migrations.RemoveIndex(model_name="tile", name="tile_pending_dispatched"),
        migrations.RenameField(model_name="tile", old_name="status", new_name="state"),
        migrations.AlterField(
            model_name="tile",
            name="state",
            field=models.CharField(
                choices=[("queued", "Queued"), ("sent", "Sent"), ("done", "Done"), ("failed", "Failed")],
                default="queued",
                max_length=16,
            ),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
        migrations.AddIndex(
            model_name="tile",
            index=models.Index(
                condition=models.Q(("state__in", ["queued", "sent"])),
                fields=["state", "dispatched_at"],
                name="tile_pending",
            ),
        ),
    ]
