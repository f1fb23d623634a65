"""The trace page: body, times, timeline, the Celery result beside Wipsie's outcome, side effects."""

import json
import re

import pytest
from django_celery_results.models import TaskResult

from sqs_app.models import Message
from sqs_app.services import message_send
from tasks_app import lifecycle, tasks
from tasks_app.models import PollResult
from tests.admin.conftest import dead_lettered, worker_took
from tests.helpers import data_polling, notification, recurring_poll

pytestmark = pytest.mark.django_db

MESSAGES = "/admin/sqs_app/message/"
EXACT_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC")


def trace(client, message: Message):
    response = client.get(f"{MESSAGES}{message.pk}/change/")
    assert response.status_code == 200
    return response, response.content.decode()


def delivered(record: Message, result: dict, *, status: str = "SUCCESS") -> Message:
    claim = worker_took(record)
    task_id = Message.objects.get(pk=claim.pk).celery_task_id
    TaskResult.objects.create(task_id=task_id, status=status, result=json.dumps(result))
    lifecycle.message_succeeded(claim)
    return Message.objects.get(pk=record.pk)


def test_the_body_and_attributes_are_pretty_printed_and_times_exact(admin_client, sqs):
    record = message_send(queue="notifications", message=notification(), attributes={}).record

    response, content = trace(admin_client, record)

    stored = Message.objects.get(pk=record.pk).body  # as the database keeps it (jsonb orders keys)
    assert response.context["body"] == json.dumps(stored, indent=2, ensure_ascii=False)
    assert "&quot;recipient&quot;: &quot;alice@example.com&quot;" in content
    times = dict(response.context["timestamps"])
    assert set(times) == {"Created", "Sent", "Last change"}
    assert all(EXACT_TIME.fullmatch(value) for value in times.values()), times
    assert EXACT_TIME.search(response.context["events"][0]["at"])


def test_the_timeline_shows_each_event_with_its_actor_and_the_attempts(admin_client, sqs, staff):
    record = message_send(queue="notifications", message=notification(), sent_by=staff).record
    record = delivered(record, {"notification_type": "email", "recipient": "alice@example.com"})

    response, content = trace(admin_client, record)

    events = [(e["kind"], e["actor"]) for e in response.context["events"]]
    assert events == [
        ("Sent", "admin"),
        ("Received", "worker"),
        ("Processing", "worker"),
        ("Succeeded", "worker"),
    ]
    assert 'id="trace-attempts">1<' in content


def test_a_failed_message_shows_its_task_failure_and_traceback(admin_client, sqs):
    record = dead_lettered()
    TaskResult.objects.create(
        task_id=record.celery_task_id,
        status="FAILURE",
        result=json.dumps({"exc_type": "PermanentTaskError", "exc_message": "HTTP 404"}),
        traceback="Traceback (most recent call last):\n  PermanentTaskError: HTTP 404",
    )

    response, content = trace(admin_client, record)

    assert "HTTP 404 from the webhook" in content
    assert 'id="trace-outcome">Failed<' in content
    assert "FAILURE" in content
    assert "PermanentTaskError: HTTP 404" in content
    assert response.context["task_result_url"].startswith("/admin/django_celery_results/taskresult/")


def test_a_task_that_succeeded_for_celery_but_failed_the_message_does_not_just_say_success(admin_client, sqs):
    record = dead_lettered()
    TaskResult.objects.create(
        task_id=record.celery_task_id, status="SUCCESS", result=json.dumps({"failed": "x"})
    )

    response, content = trace(admin_client, record)

    assert response.context["outcome_differs"] is True
    assert 'id="trace-outcome">Failed<' in content
    assert "the message itself failed" in content


def test_a_webhook_side_effect_shows_its_status_and_delivery_id(admin_client, sqs):
    record = message_send(
        queue="notifications",
        message=notification(recipient="https://example.com/hook", notification_type="webhook"),
    ).record
    record = delivered(
        record, {"notification_type": "webhook", "recipient": "https://example.com/hook", "status_code": 202}
    )

    response, _ = trace(admin_client, record)

    side_effect = dict(response.context["side_effect"])
    assert side_effect["HTTP status"] == "202"
    assert side_effect["Recipient"] == "https://example.com/hook"
    assert side_effect["Delivery id (X-Wipsie-Delivery)"] == str(record.standard_id)


def test_an_email_side_effect_names_its_recipient(admin_client, sqs):
    record = message_send(queue="notifications", message=notification()).record
    record = delivered(record, {"notification_type": "email", "recipient": "alice@example.com"})

    response, _ = trace(admin_client, record)

    assert dict(response.context["side_effect"]) == {"Channel": "email", "Recipient": "alice@example.com"}


def test_a_poll_shows_its_results_and_its_schedule(admin_client, sqs):
    record = message_send(queue="data_polling", message=data_polling()).record
    schedule = recurring_poll(origin=record, source_url="https://example.com/prices.json")
    PollResult.objects.create(
        message=record, source_url=schedule.source_url, status_code=200, duration_ms=12.5, item_count=3
    )

    response, content = trace(admin_client, record)

    [(result, url)] = response.context["poll_results"]
    assert (result.status_code, result.item_count) == (200, 3)
    assert url == f"/admin/tasks_app/pollresult/{result.pk}/change/"
    assert response.context["poll_schedule"] == schedule
    assert "every 60s: https://example.com/prices.json" in content


def test_a_replay_link_is_offered_to_whoever_may_replay(admin_client, viewer_client, sqs):
    failed = dead_lettered()

    assert 'id="replay-link"' in trace(admin_client, failed)[1]
    assert f'href="{MESSAGES}{failed.pk}/replay/"' in trace(admin_client, failed)[1]
    assert 'id="replay-link"' not in trace(viewer_client, failed)[1]


def test_an_unknown_message_is_a_404(admin_client):
    assert admin_client.get(f"{MESSAGES}999999/change/").status_code == 404
    assert admin_client.get(f"{MESSAGES}not-a-number/change/").status_code in (302, 404)


def test_a_retrying_message_shows_when_its_next_attempt_is(admin_client, sqs):
    record = message_send(queue="notifications", message=notification()).record
    lifecycle.message_retrying(worker_took(record), error="webhook answered 503", delay=120)

    response, content = trace(admin_client, Message.objects.get(pk=record.pk))

    times = dict(response.context["timestamps"])
    assert EXACT_TIME.fullmatch(times["Next attempt"])
    assert "webhook answered 503" in content
    assert [e["kind"] for e in response.context["events"]][-1] == "Retrying"


def test_a_scheduled_run_shows_the_recurring_poll_it_belongs_to_and_its_result(admin_client, boto_sqs):
    schedule = recurring_poll(source_url="https://example.com/prices.json", paused=True)
    tasks.send_scheduled_poll.apply(kwargs={"schedule_id": schedule.pk})
    run = Message.objects.get(source="scheduler")
    PollResult.objects.create(
        message=run,
        schedule=schedule,
        source_url=schedule.source_url,
        status_code=200,
        duration_ms=3,
        item_count=2,
    )

    response, content = trace(admin_client, run)

    assert response.context["poll_schedule"] == schedule
    assert response.context["poll_run"] is True
    assert f'href="/admin/tasks_app/pollschedule/{schedule.pk}/change/"' in content
    assert "(this message is one of its runs)" in content and "(paused)" in content
    [(result, _)] = response.context["poll_results"]
    assert result.item_count == 2
