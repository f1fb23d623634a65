"""The audit log's recurring-poll actions, and the audit log for both console groups.

- `AuditEntry.action` gains poll_pause, poll_resume, poll_run and poll_stop
  (tasks_app.poll_schedules writes them).
- "Wipsie operators" and "Wipsie viewers" may view the audit log (its page is
  the sidebar's "Audit log"). As in 0005, only what is missing is added.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations, models

GROUPS = ("Wipsie operators", "Wipsie viewers")


def let_the_groups_view_the_audit_log(apps, schema_editor):
    app_config = apps.get_app_config("sqs_app")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view = Permission.objects.get(content_type__app_label="sqs_app", codename="view_auditentry")
    for group in Group.objects.filter(name__in=GROUPS):
        group.permissions.add(view)


def take_the_audit_log_view_back(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view = Permission.objects.filter(content_type__app_label="sqs_app", codename="view_auditentry").first()
    if view is not None:
        for group in Group.objects.filter(name__in=GROUPS):
            group.permissions.remove(view)


class Migration(migrations.Migration):
    dependencies = [
        ("sqs_app", "0009_replay_links_backfill"),
    ]

    operations = [
        migrations.AlterField(
            model_name="auditentry",
            name="action",
            field=models.CharField(
                choices=[
                    ("send", "Send"),
                    ("receive", "Receive"),
                    ("delete", "Delete"),
                    ("purge", "Purge"),
                    ("replay", "Replay"),
                    ("redrive", "Redrive"),
                    ("prune", "Prune history"),
                    ("setup", "Set up queues"),
                    ("poll_pause", "Pause a recurring poll"),
                    ("poll_resume", "Resume a recurring poll"),
                    ("poll_run", "Run a recurring poll now"),
                    ("poll_stop", "Stop a recurring poll"),
                ],
                max_length=20,
            ),
        ),
        migrations.RunPython(let_the_groups_view_the_audit_log, take_the_audit_log_view_back),
    ]
