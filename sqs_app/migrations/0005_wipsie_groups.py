"""The two groups of the console: "Wipsie operators" and "Wipsie viewers".

Operators get every Wipsie action permission and the view permissions of
Wipsie's models (and of the Celery task results and beat's periodic tasks
shown beside messages and polls);
viewers get the view permissions and "Can view every user's messages", and no
action. Run again, it only adds what is missing: permissions an administrator
removed from a group by hand are not given back by a later deploy.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ACTIONS = [
    "send_message",
    "receive_message",
    "view_all_messages",
    "replay_message",
    "redrive_dead_letters",
    "delete_dead_letters",
    "purge_queue",
    "manage_polls",
]
VIEWABLE = [
    ("sqs_app", "message"),
    ("sqs_app", "messageevent"),
    ("sqs_app", "queuegrant"),
    ("tasks_app", "pollschedule"),
    ("tasks_app", "pollresult"),
    ("django_celery_results", "taskresult"),
    ("django_celery_beat", "periodictask"),  # recurring polls run as beat's periodic tasks
]
GROUPS = {
    "Wipsie operators": [("sqs_app", codename) for codename in ACTIONS],
    "Wipsie viewers": [("sqs_app", "view_all_messages")],
}


def create_groups(apps, schema_editor):
    # Permissions are normally created after all migrations (post_migrate):
    # create them now, so that a fresh database gets complete groups.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    views = [(app, f"view_{model}") for app, model in VIEWABLE]
    for name, codenames in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        for app_label, codename in codenames + views:
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("sqs_app", "0004_queue_grants"),
        ("tasks_app", "0002_poll_schedules_on_celery_beat"),
        ("django_celery_results", "0014_alter_taskresult_status"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
