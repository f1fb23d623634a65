"""MessageTask: claim, run the family's handler, record one outcome, own the retry policy.

Tasks run in this process with `apply()`. Celery runs an eager retry at once,
in the same call, with the same task id and `request.retries` one higher, so a
whole retry sequence plays out in one `apply()`: the countdowns are recorded
but not waited for.
"""

import json
import uuid

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import DatabaseError

from sqs_app import selectors
from sqs_app.models import EventKind, Message, MessageStatus
from sqs_app.queues import queue_spec
from sqs_app.schemas import build_standard_message
from tasks_app import lifecycle, tasks
from tasks_app.errors import PermanentTaskError, TemporaryTaskError
from tasks_app.families import HANDLERS
from tests.helpers import notification, processing

pytestmark = pytest.mark.django_db

QUEUE = "task_processing"


def received(message: dict | str, *, queue: str = QUEUE) -> Message:
    """A message as the worker's consumer records it, before its task runs."""
    if isinstance(message, dict):
        message = json.dumps(build_standard_message(message=message, queue=queue, source="api"))
    return lifecycle.message_receive(queue=queue, sqs_message_id=str(uuid.uuid4()), raw_body=message)


def kinds(record: Message) -> list[str]:
    return list(record.events.values_list("kind", flat=True))


def dead_letters(boto_sqs, queue: str = QUEUE) -> list[dict | str]:
    url = boto_sqs.get_queue_url(QueueName=queue_spec(queue).dlq_name)["QueueUrl"]
    response = boto_sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60)
    bodies = [m["Body"] for m in response.get("Messages", [])]
    return [json.loads(body) if body.startswith("{") else body for body in bodies]


class Handler:
    """Stands in for a family's handler: raises the given errors in turn, then returns."""

    def __init__(self, *errors: Exception, result=None):
        self.errors = list(errors)
        self.result = result if result is not None else {"ok": True}
        self.calls = 0

    def __call__(self, *, message, data, record):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


@pytest.fixture
def handler(monkeypatch):
    def install(*errors, result=None):
        fake = Handler(*errors, result=result)
        monkeypatch.setitem(HANDLERS, "processing", fake)
        return fake

    return install


@pytest.fixture
def retry_settings(settings):
    # Large enough to show the backoff doubling; an eager retry does not wait for it.
    settings.TASK_RETRY_BASE_SECONDS = 10
    settings.TASK_MAX_RETRIES = 3
    return settings


@pytest.fixture
def stored_results(monkeypatch):
    """Store eager results in django-celery-results, as a worker stores real ones."""
    monkeypatch.setattr(tasks.processing._get_current_object(), "store_eager_result", True)


# --- Success ---------------------------------------------------------------------------


def test_a_processing_message_succeeds_and_its_output_is_the_task_result(sqs_untouched, stored_results):
    record = received(processing(processing_options={"metrics": {"pts": ["sum"]}}))

    result = tasks.processing.apply(args=[record.pk])

    expected = {"operation": "aggregation", "output_format": "json", "result": [{"pts_sum": 3}]}
    assert result.state == "SUCCESS"
    assert result.result == expected
    record.refresh_from_db()
    assert record.status == MessageStatus.SUCCEEDED
    assert record.celery_task_id == result.id
    assert record.attempts == 1
    assert record.last_error == ""
    assert kinds(record) == [EventKind.RECEIVED, EventKind.PROCESSING, EventKind.SUCCEEDED]
    # What the admin and GET /sqs/messages/{id} show as the task result.
    task_result = selectors.message_task_result(message=record)
    assert task_result.status == "SUCCESS"
    assert task_result.result == expected


def test_a_notification_message_sends_its_email(sqs_untouched, mailoutbox):
    record = received(notification(), queue="notifications")

    result = tasks.notification.apply(args=[record.pk])

    assert result.result == {
        "notification_type": "email",
        "recipient": "alice@example.com",
        "template_id": None,
    }
    assert [m.to for m in mailoutbox] == [["alice@example.com"]]
    record.refresh_from_db()
    assert record.status == MessageStatus.SUCCEEDED


def test_a_redelivered_task_takes_its_claim_back_and_finishes_the_message(sqs_untouched, handler):
    # The worker running task-a was killed mid-task; SQS hands the task to another worker.
    record = received(processing())
    lifecycle.message_claim(message_pk=record.pk, task_id="task-a")
    fake = handler()

    result = tasks.processing.apply(args=[record.pk], task_id="task-a")

    assert result.result == {"ok": True}
    assert fake.calls == 1
    record.refresh_from_db()
    assert record.status == MessageStatus.SUCCEEDED
    assert record.attempts == 2


# --- Temporary failures: retried, then dead-lettered ----------------------------------------


def test_a_temporary_failure_is_retried_with_backoff_then_dead_lettered(
    sqs, boto_sqs, handler, retry_settings
):
    record = received(processing())
    fake = handler(*[TemporaryTaskError("HTTP 503 from upstream")] * 4)

    result = tasks.processing.apply(args=[record.pk])

    assert result.state == "FAILURE"
    assert isinstance(result.result, TemporaryTaskError)
    assert fake.calls == 4  # the first run and TASK_MAX_RETRIES retries
    record.refresh_from_db()
    assert record.status == MessageStatus.DEAD_LETTERED
    assert record.attempts == 4
    assert record.last_error == "HTTP 503 from upstream"
    retrying = record.events.filter(kind=EventKind.RETRYING)
    assert [e.detail["retry_in_seconds"] for e in retrying] == [10, 20, 40]
    assert kinds(record)[-1] == EventKind.DEAD_LETTERED
    assert record.events.last().detail["retry_count"] == 3
    [dead] = dead_letters(boto_sqs)
    assert dead["id"] == record.body["id"]
    assert dead["retry_count"] == 3
    assert dead["last_error"] == "HTTP 503 from upstream"


def test_a_temporary_failure_that_clears_succeeds_on_a_retry(sqs, boto_sqs, handler, retry_settings):
    record = received(processing())
    fake = handler(TemporaryTaskError("connection refused"), result={"done": 1})

    result = tasks.processing.apply(args=[record.pk])

    assert result.result == {"done": 1}
    assert fake.calls == 2
    record.refresh_from_db()
    assert record.status == MessageStatus.SUCCEEDED
    assert record.last_error == ""
    assert kinds(record).count(EventKind.RETRYING) == 1
    assert dead_letters(boto_sqs) == []


@pytest.mark.parametrize(
    "error, recorded",
    [
        (SoftTimeLimitExceeded(), "SoftTimeLimitExceeded()"),
        (DatabaseError("server closed the connection"), "server closed the connection"),
    ],
)
def test_a_time_limit_or_a_database_error_is_retried_too(sqs, handler, retry_settings, error, recorded):
    retry_settings.TASK_MAX_RETRIES = 1
    record = received(processing())
    fake = handler(error, error)

    tasks.processing.apply(args=[record.pk])

    assert fake.calls == 2
    record.refresh_from_db()
    assert record.status == MessageStatus.DEAD_LETTERED
    assert record.last_error == recorded


# --- Permanent failures: failed at once -----------------------------------------------------


def test_a_permanent_failure_fails_at_once_without_a_retry(sqs, boto_sqs, handler, retry_settings):
    record = received(processing())
    fake = handler(PermanentTaskError("HTTP 404 from upstream"))

    result = tasks.processing.apply(args=[record.pk])

    assert result.state == "FAILURE"
    assert isinstance(result.result, PermanentTaskError)
    assert fake.calls == 1
    record.refresh_from_db()
    assert record.status == MessageStatus.FAILED
    assert record.attempts == 1
    assert record.last_error == "HTTP 404 from upstream"
    assert EventKind.RETRYING not in kinds(record)
    [dead] = dead_letters(boto_sqs)
    assert dead["retry_count"] == 0
    assert dead["last_error"] == "HTTP 404 from upstream"


def test_an_invalid_body_fails_permanently_naming_the_field(sqs, boto_sqs, handler):
    record = received(processing(operation="explode"))
    fake = handler()

    tasks.processing.apply(args=[record.pk])

    assert fake.calls == 0
    record.refresh_from_db()
    assert record.status == MessageStatus.FAILED
    assert record.last_error.startswith("invalid processing message: data.operation:")
    assert "explode" in record.last_error
    assert len(dead_letters(boto_sqs)) == 1


def test_a_body_that_is_not_a_json_object_fails_permanently(sqs, boto_sqs, handler):
    record = received("plain text, not a StandardMessage")
    fake = handler()

    tasks.processing.apply(args=[record.pk])

    assert fake.calls == 0
    record.refresh_from_db()
    assert record.status == MessageStatus.FAILED
    assert record.last_error == "the message body is not a JSON object"
    assert dead_letters(boto_sqs) == ["plain text, not a StandardMessage"]


def test_an_unexpected_exception_fails_as_an_internal_error_without_a_retry(sqs, boto_sqs, handler):
    record = received(processing())
    fake = handler(KeyError("pts"))

    result = tasks.processing.apply(args=[record.pk])

    assert isinstance(result.result, KeyError)
    assert fake.calls == 1
    record.refresh_from_db()
    assert record.status == MessageStatus.FAILED
    assert record.last_error == "internal error: KeyError"
    assert EventKind.RETRYING not in kinds(record)
    assert dead_letters(boto_sqs)[0]["last_error"] == "internal error: KeyError"


# --- Duplicates -------------------------------------------------------------------------------


def test_a_message_claimed_by_another_task_is_a_duplicate_and_not_run(sqs_untouched, handler):
    record = received(processing())
    lifecycle.message_claim(message_pk=record.pk, task_id="task-a")
    fake = handler()

    result = tasks.processing.apply(args=[record.pk], task_id="task-b")

    assert result.result == {"duplicate": True, "message_id": record.sqs_message_id}
    assert fake.calls == 0
    record.refresh_from_db()
    assert record.status == MessageStatus.PROCESSING
    assert record.celery_task_id == "task-a"


def test_a_finished_message_delivered_again_is_not_run_again(sqs_untouched, handler):
    record = received(processing())
    fake = handler()
    tasks.processing.apply(args=[record.pk])

    again = tasks.processing.apply(args=[record.pk])

    assert again.result["duplicate"] is True
    assert fake.calls == 1
    record.refresh_from_db()
    assert record.status == MessageStatus.SUCCEEDED
    assert kinds(record).count(EventKind.SUCCEEDED) == 1


# --- Unroutable messages -----------------------------------------------------------------------


def test_an_unroutable_message_is_failed_with_the_reason_and_kept_in_the_dlq(sqs, boto_sqs):
    record = received({"task_type": "resize_image", "message": "no family takes this"}, queue="default")
    reason = "unknown task_type 'resize_image'; expected one of data_polling, processing, notification"

    result = tasks.unroutable_message.apply(args=[record.pk, reason])

    assert result.result == {"failed": reason}
    record.refresh_from_db()
    assert record.status == MessageStatus.FAILED
    assert record.last_error == reason
    assert kinds(record) == [EventKind.RECEIVED, EventKind.PROCESSING, EventKind.FAILED]
    [dead] = dead_letters(boto_sqs, "default")
    assert dead["id"] == record.body["id"]
    assert dead["task_type"] == "resize_image"
    assert dead["last_error"] == reason


def test_an_unroutable_message_delivered_twice_is_failed_once(sqs, boto_sqs):
    record = received({"message": "no task_type at all"}, queue="default")
    tasks.unroutable_message.apply(args=[record.pk, "the message has no task_type"])

    again = tasks.unroutable_message.apply(args=[record.pk, "the message has no task_type"])

    assert again.result == {"duplicate": True}
    assert len(dead_letters(boto_sqs, "default")) == 1


def test_an_outcome_that_cannot_be_recorded_hands_the_task_back_instead_of_losing_it(
    sqs, handler, monkeypatch
):
    from sqs_app import errors as sqs_errors

    record = received(processing())
    handler(PermanentTaskError("bad options"))

    def dlq_unreachable(**kwargs):
        raise sqs_errors.SQSUnavailable()

    # The DLQ cannot be reached, so the failure cannot be kept anywhere yet.
    monkeypatch.setattr(lifecycle, "dead_letter_send", dlq_unreachable)

    result = tasks.processing.apply(args=[record.pk])

    assert result.state == "REJECTED"  # requeued: SQS makes the same task visible again
    record.refresh_from_db()
    assert record.status == MessageStatus.PROCESSING
    assert "failed" not in kinds(record)
