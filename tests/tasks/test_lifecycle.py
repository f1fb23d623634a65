"""tasks_app.lifecycle: a delivery recorded, claimed by one task, and exactly one outcome.

The DLQ side is checked with plain boto3 on the moto server, not through Wipsie.
"""

import json
import uuid

import pytest

from sqs_app.models import EventKind, Message, MessageStatus
from sqs_app.queues import queue_spec
from sqs_app.schemas import build_standard_message
from sqs_app.services import message_send
from tasks_app import lifecycle
from tests.helpers import notification

pytestmark = pytest.mark.django_db

QUEUE = "notifications"


def standard_body(**extra) -> dict:
    return build_standard_message(message=notification() | extra, queue=QUEUE, source="api")


def receive(raw_body: str, sqs_message_id: str = "sqs-1", **kwargs) -> Message:
    return lifecycle.message_receive(queue=QUEUE, sqs_message_id=sqs_message_id, raw_body=raw_body, **kwargs)


def kinds(record: Message) -> list[str]:
    return list(record.events.values_list("kind", flat=True))


def dead_letters(boto_sqs, queue: str = QUEUE) -> list[dict]:
    url = boto_sqs.get_queue_url(QueueName=queue_spec(queue).dlq_name)["QueueUrl"]
    response = boto_sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=60
    )
    return response.get("Messages", [])


@pytest.fixture
def received():
    """A StandardMessage from another producer, just taken off the queue by a worker."""
    return receive(json.dumps(standard_body()))


# --- message_receive -------------------------------------------------------------------


def test_a_foreign_message_gets_its_first_row_keyed_by_its_sqs_id():
    record = receive('{"task_type": "notification", "id": "not-a-uuid"}', sqs_message_id="lambda-42")

    assert Message.objects.get() == record
    assert record.sqs_message_id == "lambda-42"
    assert record.standard_id is None
    assert record.status == MessageStatus.RECEIVED
    assert record.task_type == "notification"
    assert record.body == {"task_type": "notification", "id": "not-a-uuid"}
    assert kinds(record) == [EventKind.RECEIVED]
    assert record.events.get().detail == {"receive_count": 1, "sqs_message_id": "lambda-42"}


def test_a_foreign_message_with_a_uuid_id_is_also_keyed_by_that_id():
    body = standard_body()

    record = receive(json.dumps(body))

    assert str(record.standard_id) == body["id"]
    # A second copy of the same StandardMessage (sent twice) finds the same row.
    again = receive(json.dumps(body), sqs_message_id="sqs-2")
    assert again.pk == record.pk
    assert Message.objects.count() == 1


def test_a_body_that_is_not_json_is_kept_as_a_string():
    record = receive("plain text from the console")

    record.refresh_from_db()
    assert record.body == "plain text from the console"
    assert record.standard_id is None
    assert record.task_type == ""


def test_a_message_wipsie_sent_is_found_by_its_standard_id_and_settled(sqs):
    # The confirming write after the send was lost: the row is still pending and
    # has no SQS id. The worker's receive finds it by the id in the body.
    sent = message_send(queue=QUEUE, message=notification())
    Message.objects.filter(pk=sent.record.pk).update(status=MessageStatus.PENDING, sqs_message_id=None)

    record = receive(sent.encoded_body, sqs_message_id=sent.message_id)

    assert record.pk == sent.record.pk
    assert record.status == MessageStatus.RECEIVED
    assert record.sqs_message_id == sent.message_id
    assert Message.objects.count() == 1


def test_receiving_the_same_sqs_message_twice_keeps_one_row_with_two_received_events():
    raw = json.dumps(standard_body())

    first = receive(raw, receive_count=1)
    second = receive(raw, receive_count=2)

    assert first.pk == second.pk
    assert Message.objects.count() == 1
    second.refresh_from_db()
    assert second.receive_count == 2
    assert kinds(second) == [EventKind.RECEIVED, EventKind.RECEIVED]


def test_a_delivery_of_a_finished_message_keeps_its_outcome_and_is_noted_as_a_duplicate(received):
    claim = lifecycle.message_claim(message_pk=received.pk, task_id="task-a")
    lifecycle.message_succeeded(claim.record)

    record = receive(json.dumps(received.body))

    assert record.status == MessageStatus.SUCCEEDED
    assert record.events.last().detail["duplicate"] is True


# --- message_claim ---------------------------------------------------------------------


def test_the_first_task_gets_the_message(received):
    claim = lifecycle.message_claim(message_pk=received.pk, task_id="task-a")

    assert claim.duplicate is False
    assert claim.body == received.body
    record = Message.objects.get(pk=received.pk)
    assert record.status == MessageStatus.PROCESSING
    assert record.celery_task_id == "task-a"
    assert record.attempts == 1
    assert record.processing_started_at is not None
    assert record.events.last().detail == {"attempt": 1, "task_id": "task-a"}


def test_a_second_task_is_told_the_message_is_a_duplicate(received):
    lifecycle.message_claim(message_pk=received.pk, task_id="task-a")

    claim = lifecycle.message_claim(message_pk=received.pk, task_id="task-b")

    assert claim.duplicate is True
    record = Message.objects.get(pk=received.pk)
    assert record.celery_task_id == "task-a"
    assert record.attempts == 1
    assert record.events.last().detail == {
        "duplicate": True,
        "task_id": "task-b",
        "reason": "owned by task task-a",
    }


def test_the_same_task_takes_its_claim_back_after_its_worker_was_killed(received):
    first = lifecycle.message_claim(message_pk=received.pk, task_id="task-a")
    started = first.record.processing_started_at

    again = lifecycle.message_claim(message_pk=received.pk, task_id="task-a")

    assert again.duplicate is False
    record = Message.objects.get(pk=received.pk)
    assert record.attempts == 2
    assert record.processing_started_at == started
    assert record.status == MessageStatus.PROCESSING


@pytest.mark.parametrize("task_id", ["task-a", "task-b"])
def test_a_finished_message_is_a_duplicate_for_every_task(received, task_id):
    claim = lifecycle.message_claim(message_pk=received.pk, task_id="task-a")
    lifecycle.message_succeeded(claim.record)

    again = lifecycle.message_claim(message_pk=received.pk, task_id=task_id)

    assert again.duplicate is True
    record = Message.objects.get(pk=received.pk)
    assert record.status == MessageStatus.SUCCEEDED
    assert record.attempts == 1
    assert record.events.last().detail["reason"] == "outcome already recorded"


# --- Outcomes --------------------------------------------------------------------------


def test_success_is_recorded_with_the_error_cleared(received):
    claim = lifecycle.message_claim(message_pk=received.pk, task_id="task-a")
    lifecycle.message_retrying(claim.record, error="timeout", countdown=60)

    lifecycle.message_succeeded(claim.record, summary={"sent": 1})

    record = Message.objects.get(pk=received.pk)
    assert record.status == MessageStatus.SUCCEEDED
    assert record.last_error == ""
    assert record.finished_at is not None
    assert record.events.last().kind == EventKind.SUCCEEDED
    assert record.events.last().detail == {"sent": 1}


def test_a_retry_is_recorded_with_its_error_and_countdown(received):
    claim = lifecycle.message_claim(message_pk=received.pk, task_id="task-a")

    lifecycle.message_retrying(claim.record, error="HTTP 503", countdown=120)

    record = Message.objects.get(pk=received.pk)
    assert record.status == MessageStatus.RETRYING
    assert record.last_error == "HTTP 503"
    assert record.finished_at is None
    event = record.events.last()
    assert event.kind == EventKind.RETRYING
    assert event.detail == {"error": "HTTP 503", "retry_in_seconds": 120, "attempt": 1}


def test_a_failed_message_goes_to_the_dlq_with_its_error(received, boto_sqs):
    claim = lifecycle.message_claim(message_pk=received.pk, task_id="task-a")

    lifecycle.message_failed(claim.record, error="HTTP 404 from the webhook", body=claim.body)

    [dead] = dead_letters(boto_sqs)
    assert json.loads(dead["Body"]) == {
        **received.body,
        "retry_count": 0,
        "last_error": "HTTP 404 from the webhook",
    }
    assert dead["MessageAttributes"]["wipsie_last_error"]["StringValue"] == "HTTP 404 from the webhook"
    record = Message.objects.get(pk=received.pk)
    assert record.status == MessageStatus.FAILED
    assert record.last_error == "HTTP 404 from the webhook"
    assert record.finished_at is not None
    event = record.events.last()
    assert event.kind == EventKind.FAILED
    assert event.detail == {"error": "HTTP 404 from the webhook", "dlq_message_id": dead["MessageId"]}


def test_a_dead_lettered_message_goes_to_the_dlq_with_its_retry_count(received, boto_sqs):
    claim = lifecycle.message_claim(message_pk=received.pk, task_id="task-a")

    lifecycle.message_dead_lettered(claim.record, error="HTTP 503", body=claim.body, retry_count=3)

    [dead] = dead_letters(boto_sqs)
    body = json.loads(dead["Body"])
    assert body["id"] == received.body["id"]
    assert body["retry_count"] == 3
    assert body["last_error"] == "HTTP 503"
    assert dead["MessageAttributes"]["wipsie_retry_count"]["StringValue"] == "3"
    record = Message.objects.get(pk=received.pk)
    assert record.status == MessageStatus.DEAD_LETTERED
    event = record.events.last()
    assert event.kind == EventKind.DEAD_LETTERED
    assert event.detail == {"error": "HTTP 503", "retry_count": 3, "dlq_message_id": dead["MessageId"]}


def test_a_failed_body_that_is_not_json_goes_to_the_dlq_byte_for_byte(boto_sqs):
    record = receive("not json, from the console")
    claim = lifecycle.message_claim(message_pk=record.pk, task_id="task-a")

    lifecycle.message_failed(claim.record, error="the message has no task_type", body=claim.body)

    [dead] = dead_letters(boto_sqs)
    assert dead["Body"] == "not json, from the console"
    assert dead["MessageAttributes"]["wipsie_last_error"]["StringValue"] == "the message has no task_type"


def test_outcomes_leave_other_queues_alone(received, boto_sqs):
    claim = lifecycle.message_claim(message_pk=received.pk, task_id="task-a")

    lifecycle.message_failed(claim.record, error="boom", body=claim.body)

    assert dead_letters(boto_sqs, "default") == []
    assert len(dead_letters(boto_sqs)) == 1


def test_a_message_with_a_standard_id_on_another_queue_is_a_different_message():
    body = standard_body()
    receive(json.dumps(body))

    other = lifecycle.message_receive(queue="default", sqs_message_id="sqs-9", raw_body=json.dumps(body))

    assert Message.objects.count() == 2
    assert other.queue == "default"
    assert str(other.standard_id) == str(uuid.UUID(body["id"]))
