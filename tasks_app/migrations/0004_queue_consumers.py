"""Which worker processes consume which queue, and when each last polled it (tasks_app.consumers)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tasks_app", "0003_recurring_polls_page"),
    ]

    operations = [
        migrations.CreateModel(
            name="QueueConsumer",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("queue", models.CharField(max_length=80)),
                ("hostname", models.CharField(max_length=255)),
                ("pid", models.PositiveIntegerField()),
                ("started_at", models.DateTimeField()),
                ("last_poll_at", models.DateTimeField()),
            ],
            options={
                "ordering": ["queue", "hostname", "pid"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("hostname", "pid", "queue"), name="tasks_app_consumer_per_queue"
                    )
                ],
            },
        ),
    ]
