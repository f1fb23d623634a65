"""GET /sqs/polls and POST /sqs/polls/{id}/stop: the recurring polls."""

from datetime import datetime

import pytest
from django.utils import timezone

from sqs_app.models import Message
from tasks_app.models import PollSchedule
from tests.helpers import assert_error_envelope, recurring_poll

pytestmark = pytest.mark.django_db

SCHEDULE_KEYS = {
    "id",
    "source_url",
    "filters",
    "interval_seconds",
    "active",
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


@pytest.mark.parametrize("method, path", [("get", "/sqs/polls"), ("post", "/sqs/polls/{pk}/stop")])
def test_polls_need_authentication(anon_client, schedules, method, path):
    response = getattr(anon_client, method)(path.format(pk=schedules[0].pk))

    assert_error_envelope(response, 401, "NOT_AUTHENTICATED")
    assert PollSchedule.objects.filter(periodic_task__enabled=True).count() == 1
