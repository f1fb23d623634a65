"""tasks_app.lifecycle: a delivery claimed under a lease, and exactly one outcome.

The DLQ side is checked with plain boto3 on the moto server, not through Wipsie.
"""

import json
from datetime import timedelta
from unittest import mock

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sqs_app.models import EventKind, Message, MessageStatus
from sqs_app.queues import queue_spec
from sqs_app.schemas import build_standard_message
from sqs_app.services import message_send
from tasks_app import lifecycle
from tasks_app.lifecycle import Delivery
from tests.helpers import notification

pytestmark = pytest.mark.django_db

QUEUE = "notifications"


def standard_body(**extra) -> dict:
    return build_standard_message(message=notification() | extra, queue=QUEUE, source="api")


def delivery(raw_body: str, sqs_message_id: str = "sqs-1", *, queue: str = QUEUE, receive_count: int = 1):
    return Delivery(
        queue=queue, sqs_message_id=sqs_message_id, receive_count=receive_count, raw_body=raw_body
    )


def claim(raw_body: str, sqs_message_id: str = "sqs-1", **kwargs) -> lifecycle.Claim:
    return lifecycle.message_claim(
        delivery=delivery(raw_body, sqs_message_id, **kwargs), task_id=sqs_message_id
    )


def kinds(record: Message) -> list[str]:
    return list(record.events.values_list("kind", flat=True))


def dead_letters(boto_sqs, queue: str = QUEUE) -> list[dict]:
    url = boto_sqs.get_queue_url(QueueName=queue_spec(queue).dlq_name)["QueueUrl"]
    response = boto_sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=60
    )
    return response.get("Messages", [])


def expire_leases() -> None:
    Message.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))


@pytest.fixture
def claimed():
    """A StandardMessage from another producer, just claimed by a worker."""
    return claim(json.dumps(standard_body()))


# --- The first receipt -------------------------------------------------------------------


def test_a_foreign_message_gets_its_first_row_keyed_by_its_sqs_id():
    result = claim('{"task_type": "notification", "id": "not-a-uuid"}', sqs_message_id="lambda-42")

    record = Message.objects.get()
    assert result.claimed and result.pk == record.pk
    assert record.sqs_message_id == "lambda-42"
    assert record.standard_id is None
    assert record.status == MessageStatus.PROCESSING
    assert record.task_type == "notification"
    assert record.body == {"task_type": "notification", "id": "not-a-uuid"}
    assert (record.attempts, record.receive_count) == (1, 1)
    assert record.celery_task_id == "lambda-42"


def test_a_deliverys_body_is_parsed_once_however_often_it_is_read():
    received = delivery(json.dumps(standard_body()))

    with mock.patch.object(lifecycle, "parse_body", wraps=lifecycle.parse_body) as parse:
        assert received.body is received.body
        lifecycle.message_claim(delivery=received, task_id="sqs-1")

    assert parse.call_count == 1


def test_a_body_that_is_not_json_is_kept_as_a_string():
    claim("plain text from the console")

    record = Message.objects.get()
    assert record.body == "plain text from the console"
    assert record.standard_id is None
    assert record.task_type == ""


def test_a_message_wipsie_sent_is_found_by_its_standard_id_and_settled(sqs):
    # The confirming write after the send was lost: the row is still pending and
    # has no SQS id. The worker's claim finds it by the id in the body.
    sent = message_send(queue=QUEUE, message=notification())
    Message.objects.filter(pk=sent.record.pk).update(status=MessageStatus.PENDING, sqs_message_id=None)

    result = claim(sent.encoded_body, sqs_message_id=sent.message_id)

    assert result.pk == sent.record.pk
    record = Message.objects.get()
    assert record.status == MessageStatus.PROCESSING
    assert record.sqs_message_id == sent.message_id


def test_a_claim_of_a_known_message_is_one_statement():
    body = json.dumps(standard_body())
    claim(body)
    expire_leases()

    with CaptureQueriesContext(connection) as queries:
        result = claim(body, receive_count=2)

    assert result.claimed
    assert len(queries) == 1, [q["sql"] for q in queries]


def test_the_first_receipt_of_another_producers_message_is_one_statement():
    with CaptureQueriesContext(connection) as queries:
        result = claim('{"task_type": "notification"}', sqs_message_id="lambda-1")

    assert result.claimed
    assert len(queries) == 1, [q["sql"] for q in queries]


def test_a_row_written_under_the_claim_is_claimed_by_its_update_instead():
    # The API's row for a StandardMessage exists, but this delivery looks like a first receipt.
    body = standard_body() | {"source": "lambda"}
    Message.objects.create(queue=QUEUE, standard_id=body["id"], body=body, status=MessageStatus.SENT)

    result = claim(json.dumps(body), sqs_message_id="sqs-7")

    assert result.claimed
    record = Message.objects.get()
    assert (record.status, record.sqs_message_id, record.attempts) == (MessageStatus.PROCESSING, "sqs-7", 1)


def test_an_api_row_that_appears_between_the_update_and_the_insert_is_claimed(monkeypatch):
    # The API sent to SQS first; its INSERT lands just after the worker found no row.
    body = standard_body()
    real_claim_new = lifecycle._claim_new

    def api_insert_lands_first(*args, **kwargs):
        Message.objects.create(queue=QUEUE, standard_id=body["id"], body=body, status=MessageStatus.SENT)
        return real_claim_new(*args, **kwargs)

    monkeypatch.setattr(lifecycle, "_claim_new", api_insert_lands_first)

    result = claim(json.dumps(body), sqs_message_id="sqs-api")

    assert result.claimed  # not sent back to wait as if another worker held it
    assert Message.objects.get().status == MessageStatus.PROCESSING


def test_a_message_with_a_standard_id_on_another_queue_is_a_different_message():
    body = json.dumps(standard_body())
    claim(body)

    other = claim(body, sqs_message_id="sqs-9", queue="default")

    assert other.claimed
    assert Message.objects.count() == 2


# --- Leases ----------------------------------------------------------------------------------


def test_a_concurrent_delivery_finds_the_lease_held(claimed, settings):
    result = claim(json.dumps(claimed.body), receive_count=2)

    assert not result.claimed and not result.finished
    assert 1 <= result.held_for_seconds <= settings.CELERY_VISIBILITY_TIMEOUT + 1
    assert Message.objects.get().attempts == 1


def test_the_same_standard_message_under_another_sqs_id_finds_the_lease_held(claimed):
    result = claim(json.dumps(claimed.body), sqs_message_id="sqs-2")

    assert result.held_for_seconds
    assert Message.objects.count() == 1


def test_the_redelivery_after_a_worker_died_takes_over_once_the_lease_expired(claimed):
    started = Message.objects.get().processing_started_at
    expire_leases()

    result = claim(json.dumps(claimed.body), receive_count=2)

    assert result.claimed and result.attempt == 2
    record = Message.objects.get()
    assert (record.attempts, record.receive_count) == (2, 2)
    assert record.processing_started_at == started
    assert record.lease_expires_at > timezone.now()


def test_renewing_leases_keeps_a_long_task_its_claim(claimed, settings):
    Message.objects.update(lease_expires_at=timezone.now() + timedelta(seconds=2))

    renewed = lifecycle.leases_renew(sqs_message_ids=["sqs-1"], seconds=settings.CELERY_VISIBILITY_TIMEOUT)

    assert renewed == 1
    assert Message.objects.get().lease_expires_at > timezone.now() + timedelta(seconds=20)


def test_a_finished_message_is_not_claimed_again(claimed):
    lifecycle.message_succeeded(claimed)
    expire_leases()

    again = claim(json.dumps(claimed.body), receive_count=2)

    assert again.finished
    lifecycle.duplicate_noted(again)
    record = Message.objects.get()
    assert record.status == MessageStatus.SUCCEEDED
    assert record.attempts == 1
    assert record.events.last().detail["duplicate"] is True


# --- Outcomes --------------------------------------------------------------------------


def test_success_is_recorded_with_the_attempts_events_in_order(claimed):
    lifecycle.message_succeeded(claimed, summary={"sent": 1})

    record = Message.objects.get()
    assert record.status == MessageStatus.SUCCEEDED
    assert record.last_error == ""
    assert record.lease_expires_at is None
    assert record.finished_at is not None
    assert kinds(record) == [EventKind.RECEIVED, EventKind.PROCESSING, EventKind.SUCCEEDED]
    received, processing, succeeded = record.events.all()
    assert received.detail == {"receive_count": 1, "sqs_message_id": "sqs-1"}
    assert processing.detail == {"attempt": 1}
    assert succeeded.detail == {"attempt": 1, "sent": 1}
    assert received.at <= processing.at <= succeeded.at


def test_an_outcome_is_one_statement_on_postgresql_and_one_transaction_of_two_elsewhere(claimed):
    with CaptureQueriesContext(connection) as queries:
        lifecycle.message_succeeded(claimed)

    statements = [q["sql"] for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    if connection.vendor == "postgresql":
        [statement] = statements  # the UPDATE and the INSERT, one round trip with no BEGIN or COMMIT
        assert statement.startswith("WITH changed AS (UPDATE")
    else:
        assert len(statements) == 2, statements


def test_an_outcome_that_cannot_be_written_whole_writes_nothing(claimed):
    with pytest.raises(IntegrityError), transaction.atomic():
        # An event the database refuses (no kind): the row's update must not stay either.
        lifecycle._record_outcome(claimed, MessageStatus.SUCCEEDED, None, error="")

    record = Message.objects.get()
    assert record.status == MessageStatus.PROCESSING
    assert not record.events.exists()


def test_a_retry_is_recorded_with_its_error_and_next_attempt(claimed):
    before = timezone.now()

    lifecycle.message_retrying(claimed, error="HTTP 503", delay=120)

    record = Message.objects.get()
    assert record.status == MessageStatus.RETRYING
    assert record.last_error == "HTTP 503"
    assert record.finished_at is None
    assert record.lease_expires_at is None
    assert (
        before + timedelta(seconds=120) <= record.next_attempt_at <= timezone.now() + timedelta(seconds=120)
    )
    event = record.events.last()
    assert event.kind == EventKind.RETRYING
    assert event.detail == {"error": "HTTP 503", "retry_in_seconds": 120, "attempt": 1}


def test_a_failed_message_goes_to_the_dlq_with_its_error(claimed, boto_sqs):
    lifecycle.message_failed(claimed, error="HTTP 404 from the webhook")

    [dead] = dead_letters(boto_sqs)
    assert json.loads(dead["Body"]) == {
        **claimed.body,
        "retry_count": 0,
        "last_error": "HTTP 404 from the webhook",
    }
    assert dead["MessageAttributes"]["wipsie_last_error"]["StringValue"] == "HTTP 404 from the webhook"
    record = Message.objects.get()
    assert record.status == MessageStatus.FAILED
    assert record.last_error == "HTTP 404 from the webhook"
    assert record.finished_at is not None
    event = record.events.last()
    assert event.kind == EventKind.FAILED
    assert event.detail == {
        "error": "HTTP 404 from the webhook",
        "attempt": 1,
        "dlq_message_id": dead["MessageId"],
    }


def test_a_dead_lettered_message_goes_to_the_dlq_with_its_retry_count(boto_sqs):
    body = json.dumps(standard_body())
    claim(body)
    expire_leases()
    Message.objects.update(attempts=3)  # three attempts so far, each retried
    fourth = claim(body, receive_count=4)
    assert fourth.attempt == 4

    lifecycle.message_dead_lettered(fourth, error="HTTP 503")

    [dead] = dead_letters(boto_sqs)
    dead_body = json.loads(dead["Body"])
    assert dead_body["id"] == json.loads(body)["id"]
    assert dead_body["retry_count"] == 3
    assert dead_body["last_error"] == "HTTP 503"
    assert dead["MessageAttributes"]["wipsie_retry_count"]["StringValue"] == "3"
    record = Message.objects.get()
    assert record.status == MessageStatus.DEAD_LETTERED
    assert record.events.last().detail["retry_count"] == 3


def test_a_failed_body_that_is_not_json_goes_to_the_dlq_byte_for_byte(boto_sqs):
    result = claim("not json, from the console")

    lifecycle.message_failed(result, error="the message has no task_type")

    [dead] = dead_letters(boto_sqs)
    assert dead["Body"] == "not json, from the console"
    assert dead["MessageAttributes"]["wipsie_last_error"]["StringValue"] == "the message has no task_type"


def test_outcomes_leave_other_queues_alone(claimed, boto_sqs):
    lifecycle.message_failed(claimed, error="boom")

    assert dead_letters(boto_sqs, "default") == []
    assert len(dead_letters(boto_sqs)) == 1


def test_a_message_id_that_is_not_a_uuid_on_the_standard_id_is_ignored():
    result = claim(json.dumps({"id": "x" * 40, "task_type": "notification"}))

    assert result.claimed
    assert Message.objects.get().standard_id is None  # keyed by SQS's id alone
