"""For the console's "Recurring polls" page: its name, and each poll's latest result from an index.

The page reads, per poll, the latest result's id, status, item count and time
(correlated subqueries, ORDER BY polled_at DESC LIMIT 1). With a plain
(schedule_id, polled_at) index PostgreSQL's generic plan still walks the
polled_at index backwards and filters, which for a poll stopped long ago reads
most of the table (1.1 s with a million results). Covering the columns the page
reads makes each lookup an index-only scan of that poll's newest entry
(1.3 ms for the same page). SQLite has no INCLUDE: the plain index serves it.
Created here, not in the model's Meta, because Django's covering index is
PostgreSQL-only and warns on SQLite.
"""

from django.db import migrations

INDEX = "pollresult_schedule_latest"


def create_latest_result_index(apps, schema_editor):
    include = (
        " INCLUDE (id, status_code, item_count)" if schema_editor.connection.vendor == "postgresql" else ""
    )
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON tasks_app_pollresult (schedule_id, polled_at DESC){include}"
    )


def drop_latest_result_index(apps, schema_editor):
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("tasks_app", "0002_poll_schedules_on_celery_beat"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="pollschedule",
            options={"ordering": ["-created_at"], "verbose_name": "recurring poll"},
        ),
        migrations.RunPython(create_latest_result_index, drop_latest_result_index),
    ]
