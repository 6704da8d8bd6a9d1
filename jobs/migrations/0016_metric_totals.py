"""Running totals for /metrics (tiles recorded, their durations, job runs ended), started from the
rows there are: from here on they grow as things happen, and retention deleting rows takes
nothing from them."""

from django.db import migrations, models
from django.db.models import Count, Q, Sum

BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)  # jobs.models.totals then


def count_what_there_is(apps, schema_editor):
    Job, Tile, Total = (apps.get_model("jobs", name) for name in ("Job", "Tile", "Total"))
    done = Tile.objects.filter(state="done")
    timed = done.filter(duration_ms__isnull=False).aggregate(
        count=Count("id"),
        sum=Sum("duration_ms"),
        **{f"le{ms}": Count("id", filter=Q(duration_ms__lte=ms)) for ms in BUCKETS_MS},
    )
    totals = {
        "tiles_recorded": done.count(),
        "tile_ms_count": timed["count"],
        "tile_ms_sum": timed["sum"] or 0,
        **{f"tile_ms_le_{ms}": timed[f"le{ms}"] for ms in BUCKETS_MS},
    }
    ended = Job.objects.filter(status__in=["done", "failed", "cancelled"]).order_by()
    for status, count in ended.values_list("status").annotate(n=Count("id")):
        totals[f"jobs_ended_{status}"] = count
    Total.objects.bulk_create(Total(name=name, value=value) for name, value in totals.items() if value)


class Migration(migrations.Migration):
    dependencies = [("jobs", "0015_quotas_and_retention")]

    operations = [
        migrations.CreateModel(
            name="Total",
            fields=[
                ("name", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("value", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.RunPython(count_what_there_is, migrations.RunPython.noop),
    ]
