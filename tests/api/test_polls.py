"""GET /sqs/polls and POST /sqs/polls/{id}/stop|pause|resume|run: the recurring polls."""

import json
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from sqs_app.models import AuditEntry, Message, MessageStatus
from tasks_app.models import PollSchedule
from tests.helpers import assert_error_envelope, drain, recurring_poll

pytestmark = pytest.mark.django_db

SCHEDULE_KEYS = {
    "id",
    "source_url",
    "filters",
    "interval_seconds",
    "active",
    "state",
    "next_poll_at",
    "last_poll_time",
    "created_at",
    "stopped_at",
    "origin_message_id",
}


def schedule(**fields) -> PollSchedule:
    return recurring_poll(**({"source_url": "https://example.com/prices.json"} | fields))


@pytest.fixture
def schedules():
    """A running poll that came from a message, and one already stopped."""
    origin = Message.objects.create(queue="data_polling", sqs_message_id="sqs-poll-1", body={})
    running = schedule(origin=origin, filters={"status": "active"})
    stopped = schedule(source_url="https://example.com/old.json", active=False)
    return running, stopped


def ids_of(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()]


def test_it_lists_every_schedule_newest_first(api_client, schedules):
    running, stopped = schedules

    response = api_client.get("/sqs/polls")

    assert ids_of(response) == [stopped.pk, running.pk]
    listed = response.json()[1]
    assert set(listed) == SCHEDULE_KEYS
    assert listed["source_url"] == "https://example.com/prices.json"
    assert listed["filters"] == {"status": "active"}
    assert listed["interval_seconds"] == 60
    assert listed["active"] is True
    assert listed["state"] == "active"
    assert listed["stopped_at"] is None
    assert listed["origin_message_id"] == "sqs-poll-1"
    assert response.json()[0]["origin_message_id"] is None


@pytest.mark.parametrize("active, expected", [("true", 0), ("false", 1)])
def test_it_filters_by_active(api_client, schedules, active, expected):
    response = api_client.get(f"/sqs/polls?active={active}")

    assert ids_of(response) == [schedules[expected].pk]


def test_it_stops_a_schedule(api_client, schedules):
    running, _ = schedules

    response = api_client.post(f"/sqs/polls/{running.pk}/stop")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == running.pk
    assert body["active"] is False
    assert datetime.fromisoformat(body["stopped_at"]) <= timezone.now()
    running.refresh_from_db()
    assert running.active is False
    assert running.stopped_at is not None
    assert ids_of(api_client.get("/sqs/polls?active=true")) == []


def test_stopping_a_stopped_schedule_changes_nothing(api_client, schedules):
    _, stopped = schedules

    response = api_client.post(f"/sqs/polls/{stopped.pk}/stop")

    assert response.status_code == 200
    assert datetime.fromisoformat(response.json()["stopped_at"]) == stopped.stopped_at


def test_an_unknown_schedule_is_404_in_the_envelope(api_client, schedules):
    response = api_client.post("/sqs/polls/999999/stop")

    assert_error_envelope(response, 404, "NOT_FOUND")
    assert PollSchedule.objects.filter(periodic_task__enabled=True).count() == 1


ACTIONS = ["stop", "pause", "resume", "run"]


@pytest.mark.parametrize(
    "method, path", [("get", "/sqs/polls"), *[("post", f"/sqs/polls/{{pk}}/{a}") for a in ACTIONS]]
)
def test_polls_need_authentication(anon_client, schedules, method, path):
    response = getattr(anon_client, method)(path.format(pk=schedules[0].pk))

    assert_error_envelope(response, 401, "NOT_AUTHENTICATED")
    assert PollSchedule.objects.filter(periodic_task__enabled=True).count() == 1


def audited(action: str) -> list[AuditEntry]:
    """The API's audit entries for `action` (the fixtures' own setup is done as a command)."""
    return list(AuditEntry.objects.filter(action=action, via="api").order_by("id"))


def test_stopping_is_written_to_the_audit_log(api_client, operator, schedules):
    running, _ = schedules

    api_client.post(f"/sqs/polls/{running.pk}/stop")

    [entry] = audited("poll_stop")
    assert (entry.via, entry.user, entry.queue, entry.succeeded) == ("api", operator, "data_polling", True)
    assert entry.detail == {"schedule_id": running.pk, "source_url": running.source_url}


def test_it_pauses_a_poll_and_says_so_in_the_audit_log(api_client, operator, schedules):
    running, _ = schedules

    response = api_client.post(f"/sqs/polls/{running.pk}/pause")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["state"], body["active"], body["next_poll_at"], body["stopped_at"]) == (
        "paused",
        False,
        None,
        None,
    )
    running = PollSchedule.objects.select_related("periodic_task").get(pk=running.pk)
    assert running.periodic_task.enabled is False
    [entry] = audited("poll_pause")
    assert (entry.via, entry.actor, entry.succeeded) == ("api", operator.username, True)
    assert ids_of(api_client.get("/sqs/polls?active=true")) == []


def test_pausing_a_paused_poll_changes_nothing(api_client, schedules):
    running, _ = schedules
    api_client.post(f"/sqs/polls/{running.pk}/pause")

    response = api_client.post(f"/sqs/polls/{running.pk}/pause")

    assert response.json()["state"] == "paused"
    assert [e.detail.get("unchanged") for e in audited("poll_pause")] == [None, True]


def test_it_resumes_a_paused_poll_one_interval_from_now(api_client, schedules):
    running, _ = schedules
    api_client.post(f"/sqs/polls/{running.pk}/pause")
    before = timezone.now()

    response = api_client.post(f"/sqs/polls/{running.pk}/resume")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["state"], body["active"]) == ("active", True)
    next_run = datetime.fromisoformat(body["next_poll_at"])
    assert before + timedelta(seconds=60) <= next_run <= timezone.now() + timedelta(seconds=60)
    assert PollSchedule.objects.get(pk=running.pk).periodic_task.enabled is True
    assert len(audited("poll_resume")) == 1


def test_it_runs_a_poll_now_through_the_same_send_as_beat(api_client, operator, boto_sqs):
    poll = recurring_poll(correlation_id="prices", filters={"status": "active"}, paused=True)

    response = api_client.post(f"/sqs/polls/{poll.pk}/run")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["queue"], body["status"]) == ("data_polling", "sent")
    [sent] = drain(boto_sqs, "data_polling")
    assert sent["MessageId"] == body["message_id"]
    message = json.loads(sent["Body"])
    assert (message["task_type"], message["source"], message["schedule_id"]) == (
        "data_polling",
        "api",
        poll.pk,
    )
    assert message["correlation_id"] == "prices"
    assert message["data"]["source_url"] == poll.source_url
    record = Message.objects.get(sqs_message_id=body["message_id"])
    assert (record.status, record.sent_by) == (MessageStatus.SENT, operator)
    [entry] = audited("poll_run")
    assert (entry.via, entry.message_ids, entry.count) == ("api", [body["message_id"]], 1)
    assert PollSchedule.objects.get(pk=poll.pk).state == "paused", "running now does not resume it"


@pytest.mark.parametrize("action", ["pause", "resume", "run"])
def test_a_stopped_poll_is_final(api_client, schedules, sqs_untouched, action):
    _, stopped = schedules

    response = api_client.post(f"/sqs/polls/{stopped.pk}/{action}")

    error = assert_error_envelope(response, 409, "POLL_STOPPED")
    assert error["details"] == {"schedule_id": stopped.pk}
    stopped = PollSchedule.objects.select_related("periodic_task").get(pk=stopped.pk)
    assert (stopped.state, stopped.periodic_task.enabled) == ("stopped", False)
    [entry] = audited(f"poll_{action}")
    assert (entry.succeeded, entry.detail["error"]) == (False, "POLL_STOPPED")


@pytest.mark.parametrize("action", ACTIONS)
def test_an_unknown_poll_is_404_for_every_action(api_client, schedules, sqs_untouched, action):
    assert_error_envelope(api_client.post(f"/sqs/polls/999999/{action}"), 404, "NOT_FOUND")
    assert not AuditEntry.objects.filter(via="api").exists()


def test_a_stopped_poll_whose_beat_task_was_enabled_by_hand_is_still_not_active(api_client, schedules):
    running, stopped = schedules
    stopped.periodic_task.enabled = True
    stopped.periodic_task.save()

    assert ids_of(api_client.get("/sqs/polls?active=true")) == [running.pk]
    assert ids_of(api_client.get("/sqs/polls?active=false")) == [stopped.pk]
    assert [p["state"] for p in api_client.get("/sqs/polls").json()] == ["stopped", "active"]
