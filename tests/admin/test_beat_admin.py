"""django-celery-beat's admins in the console's style, and its bulk actions closed to viewers."""

import pytest
from django.contrib import admin
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)
from unfold.admin import ModelAdmin

from tests.admin.conftest import run_action, shown_messages
from tests.helpers import recurring_poll

pytestmark = pytest.mark.django_db

TASKS = "/admin/django_celery_beat/periodictask/"
BEAT_MODELS = [PeriodicTask, IntervalSchedule, CrontabSchedule, SolarSchedule, ClockedSchedule]


@pytest.mark.parametrize("model", BEAT_MODELS, ids=lambda m: m.__name__)
def test_every_beat_admin_is_an_unfold_admin_and_its_pages_open(admin_client, model):
    assert isinstance(admin.site._registry[model], ModelAdmin)
    url = f"/admin/django_celery_beat/{model._meta.model_name}/"

    assert admin_client.get(url).status_code == 200
    assert admin_client.get(f"{url}add/").status_code == 200


def test_a_polls_periodic_task_opens_for_a_viewer_read_only(viewer_client):
    poll = recurring_poll()

    response = viewer_client.get(f"{TASKS}{poll.periodic_task_id}/change/")

    assert response.status_code == 200
    assert response.context["has_change_permission"] is False


@pytest.mark.parametrize("action", ["enable_tasks", "disable_tasks", "toggle_tasks", "run_tasks"])
def test_a_viewer_cannot_start_or_stop_a_poll_through_beats_actions(viewer_client, sqs_untouched, action):
    running, paused = recurring_poll(), recurring_poll(paused=True)
    chosen = [running.periodic_task_id, paused.periodic_task_id]

    response = viewer_client.post(TASKS, {"action": action, "_selected_action": chosen, "index": 0})

    assert response.status_code == 403
    assert list(
        PeriodicTask.objects.filter(pk__in=chosen).order_by("pk").values_list("enabled", flat=True)
    ) == [
        True,
        False,
    ]
    assert viewer_client.get(TASKS).context["action_form"] is None, "no actions are offered"


def test_a_superuser_still_has_beats_actions(admin_client):
    poll = recurring_poll()

    response = run_action(admin_client, TASKS, "disable_tasks", [poll.periodic_task])

    assert shown_messages(response) == ["1 task was successfully disabled"]
    assert PeriodicTask.objects.get(pk=poll.periodic_task_id).enabled is False
