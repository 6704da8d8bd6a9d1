from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("pipeline", "0001_initial")]
    operations = [
        migrations.AddField(
            model_name="collector",
            name="storage_error",
            field=models.CharField(blank=True, max_length=255),
        ),
    ]
