"""For the console's "Recurring polls" page: its name, and each poll's latest result from an index."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tasks_app", "0002_poll_schedules_on_celery_beat"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="pollschedule",
            options={"ordering": ["-created_at"], "verbose_name": "recurring poll"},
        ),
        migrations.AddIndex(
            model_name="pollresult",
            index=models.Index(fields=["schedule", "-polled_at"], name="pollresult_schedule_polled"),
        ),
    ]
