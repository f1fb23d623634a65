"""The admin, as staff use it in a browser: history, the send page, queues, replays, polls."""

import json

import pytest
from django_celery_results.models import TaskResult

from sqs_app.models import EventKind, Message, MessageStatus
from sqs_app.queues import queue_spec
from sqs_app.schemas import build_standard_message
from sqs_app.services import message_send
from tasks_app.models import PollSchedule
from tests.helpers import (
    drain,
    make_sqs_unreachable,
    message_count,
    notification,
    recurring_poll,
    worker_failed,
)

pytestmark = pytest.mark.django_db

MESSAGES = "/admin/sqs_app/message/"
SEND = "/admin/sqs_app/message/send/"
QUEUES = "/admin/sqs_app/message/queues/"
POLLS = "/admin/tasks_app/pollschedule/"


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def dead_lettered(subject: str = "Your export", *, raw_body: str | None = None) -> Message:
    """A notification a worker took, failed permanently and put on the DLQ."""
    body = build_standard_message(message=notification(subject=subject), queue="notifications", source="api")
    return worker_failed(
        queue="notifications",
        raw_body=raw_body or json.dumps(body),
        sqs_message_id=f"sqs-{subject}",
        error="HTTP 404 from the webhook",
    )


def dlq_count(boto_sqs, queue: str = "notifications") -> int:
    url = boto_sqs.get_queue_url(QueueName=queue_spec(queue).dlq_name)["QueueUrl"]
    attributes = boto_sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(count) for count in attributes.values())


def shown_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def run_action(client, url: str, action: str, objects) -> object:
    return client.post(
        url, {"action": action, "_selected_action": [o.pk for o in objects], "index": 0}, follow=True
    )


# --- The message history ------------------------------------------------------------------


def test_the_message_list_shows_the_history(admin_client, sqs):
    sent = message_send(queue="notifications", message=notification())

    response = admin_client.get(MESSAGES)

    assert response.status_code == 200
    content = response.content.decode()
    assert sent.message_id in content
    assert "Send a message" in content
    assert list(response.context["cl"].result_list) == [sent.record]


def test_a_message_page_shows_its_timeline_and_task_result(admin_client, sqs):
    record = dead_lettered()
    TaskResult.objects.create(
        task_id=record.celery_task_id, status="FAILURE", result=json.dumps({"exc_message": "HTTP 404"})
    )

    response = admin_client.get(f"{MESSAGES}{record.pk}/change/")

    assert response.status_code == 200
    content = response.content.decode()
    assert "HTTP 404 from the webhook" in content
    for kind in ("received", "processing", "failed"):
        assert kind in content
    assert "<code>FAILURE</code>" in content
    assert "exc_message" in content


# --- Send a message ----------------------------------------------------------------------------


def test_the_send_page_renders(admin_client, sqs_untouched):
    response = admin_client.get(SEND)

    assert response.status_code == 200
    assert b'id="send-message-form"' in response.content


def test_the_send_page_sends_a_valid_message_to_sqs(admin_client, boto_sqs, staff):
    response = admin_client.post(
        SEND,
        {
            "queue_name": "notifications",
            "message": json.dumps(notification()),
            "attributes": json.dumps({"tenant": "acme"}),
        },
    )

    record = Message.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{MESSAGES}{record.pk}/change/"
    [delivered] = drain(boto_sqs, "notifications")
    body = json.loads(delivered["Body"])
    assert body["id"] == str(record.standard_id)
    assert body["source"] == "manual"
    assert body["data"]["recipient"] == "alice@example.com"
    assert delivered["MessageAttributes"]["tenant"]["StringValue"] == "acme"
    assert record.sent_by == staff
    assert record.status == MessageStatus.SENT


def test_the_send_page_shows_invalid_json_and_sends_nothing(admin_client, boto_sqs):
    response = admin_client.post(SEND, {"queue_name": "notifications", "message": '{"task_type": '})

    assert response.status_code == 200
    assert "Not valid JSON" in response.content.decode()
    assert message_count(boto_sqs, "notifications") == 0
    assert Message.objects.count() == 0


def test_the_send_page_shows_an_invalid_notification_and_sends_nothing(admin_client, boto_sqs):
    message = notification()
    del message["data"]["recipient"]

    response = admin_client.post(SEND, {"queue_name": "notifications", "message": json.dumps(message)})

    assert response.status_code == 200
    errors = response.context["form"].non_field_errors()
    assert any(e.startswith("message.data.recipient:") for e in errors)
    assert "message.data.recipient" in response.content.decode()
    assert message_count(boto_sqs, "notifications") == 0
    assert Message.objects.count() == 0


# --- Queues and redrive -----------------------------------------------------------------------


def test_the_queues_page_shows_depths_and_dead_letters(admin_client, sqs):
    message_send(queue="notifications", message=notification())
    message_send(queue="notifications", message=notification())
    dead_lettered()

    response = admin_client.get(QUEUES)

    assert response.status_code == 200
    rows = {row["name"]: row for row in response.context["rows"]}
    # The four, and Wipsie's own task queue (selectors.queue_overview).
    assert list(rows) == ["default", "data_polling", "task_processing", "notifications", "celery"]
    assert (rows["notifications"]["visible"], rows["notifications"]["dead"]) == (2, 1)
    assert all(
        (row["visible"], row["dead"]) == (0, 0) for name, row in rows.items() if name != "notifications"
    )
    content = response.content.decode()
    assert 'name="redrive-notifications"' in content
    assert 'name="redrive-default"' not in content


def test_the_queues_page_shows_an_unreachable_sqs(admin_client, sqs, settings):
    make_sqs_unreachable(settings)

    response = admin_client.get(QUEUES)

    assert response.status_code == 200
    assert "SQS_UNAVAILABLE" in response.content.decode()


def test_redrive_dead_letters_moves_them_back_onto_the_queue(admin_client, boto_sqs):
    first, second = dead_lettered("first"), dead_lettered("second")

    response = admin_client.post(f"{QUEUES}notifications/redrive/", follow=True)

    assert response.redirect_chain == [(QUEUES, 302)]
    assert "Redrove 2 message(s) from the notifications DLQ." in shown_messages(response)
    assert dlq_count(boto_sqs) == 0
    replayed = {json.loads(m["Body"])["id"] for m in drain(boto_sqs, "notifications")}
    assert replayed == {str(first.standard_id), str(second.standard_id)}
    assert Message.objects.get(pk=first.pk).events.last().actor == "admin"


def test_redrive_is_a_post_only(admin_client, boto_sqs):
    dead_lettered()

    response = admin_client.get(f"{QUEUES}notifications/redrive/")

    assert response.status_code == 302
    assert dlq_count(boto_sqs) == 1


# --- Actions -----------------------------------------------------------------------------------------


def test_the_replay_action_replays_the_selected_dead_lettered_messages(admin_client, boto_sqs):
    chosen, left = dead_lettered("chosen"), dead_lettered("left")
    finished = Message.objects.create(queue="notifications", body={}, status=MessageStatus.SUCCEEDED)

    response = run_action(admin_client, MESSAGES, "replay_from_dlq", [chosen, finished])

    assert response.status_code == 200
    assert shown_messages(response) == [
        "Replayed 1 message(s). 1 were not failed or dead-lettered and were left alone."
    ]
    [replayed] = drain(boto_sqs, "notifications")
    assert json.loads(replayed["Body"])["id"] == str(chosen.standard_id)
    assert Message.objects.get(pk=chosen.pk).status == MessageStatus.SENT
    assert Message.objects.get(pk=left.pk).status == MessageStatus.FAILED
    assert dlq_count(boto_sqs) == 1


def test_the_replay_action_replays_a_message_from_another_producer(admin_client, boto_sqs):
    # No StandardMessage id: its DLQ copy is known only by the DLQ's own message id.
    record = dead_lettered(raw_body="resize photo 17")

    response = run_action(admin_client, MESSAGES, "replay_from_dlq", [record])

    assert shown_messages(response) == ["Replayed 1 message(s)."]
    assert [m["Body"] for m in drain(boto_sqs, "notifications")] == ["resize photo 17"]
    assert dlq_count(boto_sqs) == 0


def test_the_stop_polls_action_stops_the_selected_schedules(admin_client, sqs_untouched):
    chosen, other = recurring_poll(), recurring_poll()

    response = run_action(admin_client, POLLS, "stop_polls", [chosen])

    assert shown_messages(response) == ["Stopped 1 poll(s)."]
    chosen = PollSchedule.objects.get(pk=chosen.pk)
    other = PollSchedule.objects.get(pk=other.pk)
    assert (chosen.active, other.active) == (False, True)
    assert chosen.stopped_at is not None


# --- Who may use it ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [MESSAGES, SEND, QUEUES, POLLS])
def test_a_user_who_is_not_staff_is_sent_to_the_login_page(client, user, sqs_untouched, path):
    client.force_login(user)

    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith(f"/admin/login/?next={path}")


def test_a_user_who_is_not_staff_cannot_send_or_redrive(client, user, boto_sqs):
    client.force_login(user)
    dead_lettered()

    sent = client.post(SEND, {"queue_name": "notifications", "message": json.dumps(notification())})
    redriven = client.post(f"{QUEUES}notifications/redrive/")

    assert sent.status_code == redriven.status_code == 302
    assert message_count(boto_sqs, "notifications") == 0
    assert dlq_count(boto_sqs) == 1
    assert Message.objects.get().events.filter(kind=EventKind.REPLAYED).count() == 0
