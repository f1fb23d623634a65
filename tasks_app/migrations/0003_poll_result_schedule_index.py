"""A poll's results newest first, and its latest one, from an index (the recurring polls page)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tasks_app", "0002_poll_schedules_on_celery_beat"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="pollresult",
            index=models.Index(fields=["schedule", "-polled_at"], name="pollresult_schedule_polled"),
        ),
    ]
