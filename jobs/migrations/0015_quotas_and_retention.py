"""Per-user limits (the quotas and priority high), what a job holds in storage, the keep flag, and
the indexes that keep the unfinished jobs and the expired ones cheap to find.

Jobs from before count 0 stored bytes: their files were never counted, and walking the storage to
count them is what this avoids."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

ENDED = ["done", "failed", "cancelled"]


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0014_tile_ordering_by_column"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="UserLimits",
            fields=[
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="limits",
                        serialize=False,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "unfinished_jobs",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="jobs not yet done, failed or cancelled (empty: QUOTA_UNFINISHED_JOBS)",
                        null=True,
                    ),
                ),
                (
                    "queued_megapixels",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="input pixels of those jobs together, in millions (empty: QUOTA_QUEUED_MEGAPIXELS)",
                        null=True,
                    ),
                ),
                (
                    "stored_mb",
                    models.PositiveIntegerField(
                        blank=True,
                        help_text="MB (2**20 bytes) the user's jobs hold in storage: originals, tiles, results, "
                        "previews (empty: QUOTA_STORED_MB)",
                        null=True,
                    ),
                ),
                (
                    "high_priority",
                    models.BooleanField(
                        default=False,
                        help_text="may submit at priority high, or raise a job to it, as staff may (it goes "
                        "before fairness between users)",
                    ),
                ),
            ],
            options={"verbose_name": "user limits", "verbose_name_plural": "user limits"},
        ),
        migrations.AddField(
            model_name="job",
            name="keep",
            field=models.BooleanField(default=False, help_text="never deleted by retention (JOB_RETENTION_DAYS)"),
        ),
        migrations.AddField(model_name="job", name="stored_bytes", field=models.BigIntegerField(default=0)),
        migrations.AddField(model_name="job", name="tile_bytes", field=models.BigIntegerField(default=0)),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(condition=~models.Q(status__in=ENDED), fields=["status"], name="job_unfinished"),
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(condition=models.Q(status__in=ENDED), fields=["finished_at"], name="job_ended"),
        ),
    ]
