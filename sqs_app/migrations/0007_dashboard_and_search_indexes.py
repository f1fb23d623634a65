"""Indexes for the admin: the dashboard's outcome counts, and substring search on PostgreSQL.

The admin's search matches `UPPER(body::text) LIKE '%TERM%'` and the same on
`last_error` (sqs_app/admin/messages.py). On PostgreSQL, pg_trgm GIN indexes on
exactly those expressions serve it; elsewhere (SQLite) the search is a plain
scan and this part does nothing.
"""

from django.db import migrations, models

TRIGRAM_INDEXES = {
    "sqs_message_body_trgm": "(UPPER((body)::text))",
    "sqs_message_error_trgm": "(UPPER(last_error))",
}


def create_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, expression in TRIGRAM_INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON sqs_app_message USING gin ({expression} gin_trgm_ops)"
        )


def drop_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in TRIGRAM_INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("sqs_app", "0006_audit_log_and_open_message_index"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="message",
            index=models.Index(fields=["status", "finished_at"], name="message_status_finished_idx"),
        ),
        migrations.RunPython(create_trigram_indexes, drop_trigram_indexes),
    ]
