"""Link the replays made before Message.replay_of existed to their originals.

`sqs_replay` always wrote the original's id into the new body (`replay_of`);
this turns that into the foreign key the trace pages follow. Replays are sent
with source `manual`, so only those rows are read, in batches.
"""

import uuid

from django.db import migrations

BATCH = 1000


def link_replays(apps, schema_editor):
    Message = apps.get_model("sqs_app", "Message")
    manual = Message.objects.filter(source="manual", replay_of__isnull=True).order_by("pk")
    last_pk = 0
    while True:
        batch = list(manual.filter(pk__gt=last_pk).only("pk", "body")[:BATCH])
        if not batch:
            return
        last_pk = batch[-1].pk
        for row in batch:
            original_id = row.body.get("replay_of") if isinstance(row.body, dict) else None
            original = _original(Message, original_id) if isinstance(original_id, str) else None
            if original is not None:
                Message.objects.filter(pk=row.pk).update(replay_of=original)


def _original(Message, original_id: str):
    try:
        return Message.objects.filter(standard_id=uuid.UUID(original_id)).order_by("created_at").first()
    except ValueError:
        return Message.objects.filter(sqs_message_id=original_id).first()


class Migration(migrations.Migration):
    dependencies = [("sqs_app", "0008_replay_links_and_operator_runs")]

    operations = [migrations.RunPython(link_replays, migrations.RunPython.noop)]
