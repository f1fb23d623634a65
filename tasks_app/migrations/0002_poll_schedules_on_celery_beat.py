"""Recurring polls move to django-celery-beat: each PollSchedule gets a PeriodicTask.

Existing schedules keep running (or stay stopped): `active` becomes the
periodic task's `enabled`, and the timing the old tick kept (`next_poll_at`)
is beat's from now on.
"""

import json

import django.db.models.deletion
from django.db import migrations, models


def schedules_to_periodic_tasks(apps, schema_editor):
    PollSchedule = apps.get_model("tasks_app", "PollSchedule")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for schedule in PollSchedule.objects.filter(periodic_task__isnull=True):
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=schedule.interval_seconds, period="seconds"
        )
        schedule.periodic_task = PeriodicTask.objects.create(
            name=f"Recurring poll {schedule.pk}: {schedule.source_url}"[:200],
            task="tasks_app.tasks.send_scheduled_poll",
            interval=interval,
            kwargs=json.dumps({"schedule_id": schedule.pk}),
            enabled=schedule.active,
            description=f"Polls {schedule.source_url} every {schedule.interval_seconds} s (Wipsie).",
        )
        schedule.save(update_fields=["periodic_task"])


def periodic_tasks_to_schedules(apps, schema_editor):
    PollSchedule = apps.get_model("tasks_app", "PollSchedule")
    for schedule in PollSchedule.objects.exclude(periodic_task__isnull=True).select_related("periodic_task"):
        schedule.active = schedule.periodic_task.enabled
        schedule.save(update_fields=["active"])


class Migration(migrations.Migration):
    dependencies = [
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("django_celery_results", "0014_alter_taskresult_status"),
        ("tasks_app", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="RecordedTaskResult",
            fields=[],
            options={"proxy": True, "indexes": [], "constraints": []},
            bases=("django_celery_results.taskresult",),
        ),
        migrations.AddField(
            model_name="pollschedule",
            name="periodic_task",
            field=models.OneToOneField(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="poll_schedule",
                to="django_celery_beat.periodictask",
            ),
        ),
        migrations.RunPython(schedules_to_periodic_tasks, periodic_tasks_to_schedules),
        migrations.RemoveField(model_name="pollschedule", name="active"),
        migrations.RemoveField(model_name="pollschedule", name="next_poll_at"),
    ]
