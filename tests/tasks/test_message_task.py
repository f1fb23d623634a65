"""MessageTask: claim, run the family's handler, record one outcome, own the retry policy.

Tasks run in this process with `apply()`, given one delivery (what the
worker's consumer builds from an SQS message). A retry is not run again
here: the task leaves the message on its queue (ReturnToQueue) with the
backoff as its delay, and the next attempt is the next delivery, with the
receive count one higher; the tests play those deliveries out one by one.
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
from tasks_app.worker import ReturnToQueue
from tests.helpers import notification, processing

pytestmark = pytest.mark.django_db

QUEUE = "task_processing"


def delivery(message: dict | str, *, queue: str = QUEUE, sqs_message_id: str | None = None) -> dict:
    """The task kwargs for a first receipt of `message` (a StandardMessage, or any raw body)."""
    if isinstance(message, dict):
        message = json.dumps(build_standard_message(message=message, queue=queue, source="api"))
    return {
        "queue": queue,
        "sqs_message_id": sqs_message_id or str(uuid.uuid4()),
        "receive_count": 1,
        "raw_body": message,
        "sent_timestamp": None,
        "attributes": {},
    }


def again(kwargs: dict) -> dict:
    """The same message received once more (a retry, a redelivery)."""
    return {**kwargs, "receive_count": kwargs["receive_count"] + 1}


def run(task, kwargs: dict):
    return task.apply(kwargs=kwargs, task_id=kwargs["sqs_message_id"])


def row(kwargs: dict) -> Message:
    return Message.objects.get(sqs_message_id=kwargs["sqs_message_id"])


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

    def __call__(self, *, message, data, record_pk):
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
    settings.TASK_RETRY_BASE_SECONDS = 10
    settings.TASK_MAX_RETRIES = 3
    return settings


@pytest.fixture
def stored_results(monkeypatch):
    """Store eager results in django-celery-results, as a worker stores real ones."""
    monkeypatch.setattr(tasks.processing._get_current_object(), "store_eager_result", True)


def returned_to_queue(result) -> ReturnToQueue:
    assert result.state == "REJECTED", result.state
    assert isinstance(result.result, ReturnToQueue)
    return result.result


# --- Success ---------------------------------------------------------------------------


def test_a_processing_message_succeeds_and_its_output_is_the_task_result(sqs_untouched, stored_results):
    kwargs = delivery(processing(processing_options={"metrics": {"pts": ["sum"]}}))

    result = run(tasks.processing, kwargs)

    expected = {"operation": "aggregation", "output_format": "json", "result": [{"pts_sum": 3}]}
    assert result.state == "SUCCESS"
    assert result.result == expected
    record = row(kwargs)
    assert record.status == MessageStatus.SUCCEEDED
    assert record.celery_task_id == kwargs["sqs_message_id"] == result.id
    assert (record.attempts, record.receive_count) == (1, 1)
    assert record.last_error == ""
    assert record.lease_expires_at is None
    assert kinds(record) == [EventKind.RECEIVED, EventKind.PROCESSING, EventKind.SUCCEEDED]
    # What the admin and GET /sqs/messages/{id} show as the task result.
    task_result = selectors.message_task_result(message=record)
    assert task_result.status == "SUCCESS"
    assert task_result.result == expected
    assert task_result.task_name == "processing"


def test_a_notification_message_sends_its_email(sqs_untouched, mailoutbox):
    kwargs = delivery(notification(), queue="notifications")

    result = run(tasks.notification, kwargs)

    assert result.result == {
        "notification_type": "email",
        "recipient": "alice@example.com",
        "template_id": None,
    }
    assert [m.to for m in mailoutbox] == [["alice@example.com"]]
    assert row(kwargs).status == MessageStatus.SUCCEEDED


def test_the_redelivery_after_a_worker_died_takes_over_once_the_lease_expired(sqs_untouched, handler):
    # The worker holding the first delivery was killed mid-task: its lease ends with the visibility.
    kwargs = delivery(processing())
    lifecycle.message_claim(delivery=lifecycle.Delivery(**kwargs), task_id=kwargs["sqs_message_id"])
    Message.objects.update(lease_expires_at="2000-01-01T00:00:00Z")
    fake = handler()

    result = run(tasks.processing, again(kwargs))

    assert result.result == {"ok": True}
    assert fake.calls == 1
    record = row(kwargs)
    assert record.status == MessageStatus.SUCCEEDED
    assert (record.attempts, record.receive_count) == (2, 2)


# --- Temporary failures: retried on the message's own queue, then dead-lettered -----------------


def test_a_temporary_failure_leaves_the_message_on_its_queue_for_the_backoff(
    sqs_untouched, handler, retry_settings
):
    kwargs = delivery(processing())
    handler(TemporaryTaskError("HTTP 503 from upstream"))

    back = returned_to_queue(run(tasks.processing, kwargs))

    assert back.delay == 10
    record = row(kwargs)
    assert record.status == MessageStatus.RETRYING
    assert record.last_error == "HTTP 503 from upstream"
    assert record.lease_expires_at is None
    assert record.next_attempt_at is not None
    assert kinds(record)[-1] == EventKind.RETRYING


def test_retries_double_their_backoff_then_the_message_is_dead_lettered(
    sqs, boto_sqs, handler, retry_settings
):
    kwargs = delivery(processing())
    fake = handler(*[TemporaryTaskError("HTTP 503 from upstream")] * 4)

    delays = []
    for _ in range(3):
        delays.append(returned_to_queue(run(tasks.processing, kwargs)).delay)
        kwargs = again(kwargs)
    result = run(tasks.processing, kwargs)

    assert delays == [10, 20, 40]
    assert result.state == "FAILURE"
    assert isinstance(result.result, TemporaryTaskError)
    assert fake.calls == 4  # the first attempt and TASK_MAX_RETRIES retries
    record = row(kwargs)
    assert record.status == MessageStatus.DEAD_LETTERED
    assert (record.attempts, record.receive_count) == (4, 4)
    assert record.last_error == "HTTP 503 from upstream"
    retrying = record.events.filter(kind=EventKind.RETRYING)
    assert [e.detail["retry_in_seconds"] for e in retrying] == [10, 20, 40]
    assert kinds(record)[-1] == EventKind.DEAD_LETTERED
    assert record.events.last().detail["retry_count"] == 3
    [dead] = dead_letters(boto_sqs)
    assert dead["id"] == record.body["id"]
    assert dead["retry_count"] == 3
    assert dead["last_error"] == "HTTP 503 from upstream"


def test_a_temporary_failure_that_clears_succeeds_on_the_next_delivery(
    sqs, boto_sqs, handler, retry_settings
):
    kwargs = delivery(processing())
    fake = handler(TemporaryTaskError("connection refused"), result={"done": 1})
    returned_to_queue(run(tasks.processing, kwargs))

    result = run(tasks.processing, again(kwargs))

    assert result.result == {"done": 1}
    assert fake.calls == 2
    record = row(kwargs)
    assert record.status == MessageStatus.SUCCEEDED
    assert record.last_error == ""
    assert record.next_attempt_at is None
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
    kwargs = delivery(processing())
    fake = handler(error, error)

    returned_to_queue(run(tasks.processing, kwargs))
    run(tasks.processing, again(kwargs))

    assert fake.calls == 2
    record = row(kwargs)
    assert record.status == MessageStatus.DEAD_LETTERED
    assert record.last_error == recorded


# --- Permanent failures: failed at once -----------------------------------------------------


def test_a_permanent_failure_fails_at_once_without_a_retry(sqs, boto_sqs, handler, retry_settings):
    kwargs = delivery(processing())
    fake = handler(PermanentTaskError("HTTP 404 from upstream"))

    result = run(tasks.processing, kwargs)

    assert result.state == "FAILURE"
    assert isinstance(result.result, PermanentTaskError)
    assert fake.calls == 1
    record = row(kwargs)
    assert record.status == MessageStatus.FAILED
    assert record.attempts == 1
    assert record.last_error == "HTTP 404 from upstream"
    assert EventKind.RETRYING not in kinds(record)
    [dead] = dead_letters(boto_sqs)
    assert dead["retry_count"] == 0
    assert dead["last_error"] == "HTTP 404 from upstream"


def test_a_failed_message_shows_failure_as_its_task_result(sqs, handler, stored_results):
    kwargs = delivery(processing())
    handler(PermanentTaskError("HTTP 404 from upstream"))

    run(tasks.processing, kwargs)

    task_result = selectors.message_task_result(message=row(kwargs))
    assert task_result.status == "FAILURE"
    assert "HTTP 404 from upstream" in json.dumps(task_result.result)


def test_an_invalid_body_fails_permanently_naming_the_field(sqs, boto_sqs, handler):
    kwargs = delivery(processing(operation="explode"))
    fake = handler()

    run(tasks.processing, kwargs)

    assert fake.calls == 0
    record = row(kwargs)
    assert record.status == MessageStatus.FAILED
    assert record.last_error.startswith("invalid processing message: data.operation:")
    assert "explode" in record.last_error
    assert len(dead_letters(boto_sqs)) == 1


def test_an_unexpected_exception_fails_as_an_internal_error_without_a_retry(sqs, boto_sqs, handler):
    kwargs = delivery(processing())
    fake = handler(KeyError("pts"))

    result = run(tasks.processing, kwargs)

    assert isinstance(result.result, KeyError)
    assert fake.calls == 1
    record = row(kwargs)
    assert record.status == MessageStatus.FAILED
    assert record.last_error == "internal error: KeyError"
    assert EventKind.RETRYING not in kinds(record)
    assert dead_letters(boto_sqs)[0]["last_error"] == "internal error: KeyError"


# --- Duplicates -------------------------------------------------------------------------------


def test_a_concurrent_delivery_of_a_message_being_processed_waits_for_its_lease(
    sqs_untouched, handler, settings
):
    # SQS handed the same message to two workers at once: the second finds the lease held.
    settings.CELERY_VISIBILITY_TIMEOUT = 30
    kwargs = delivery(processing())
    lifecycle.message_claim(delivery=lifecycle.Delivery(**kwargs), task_id=kwargs["sqs_message_id"])
    fake = handler()

    back = returned_to_queue(run(tasks.processing, again(kwargs)))

    assert 1 <= back.delay <= 31  # it comes back once that lease would have ended
    assert fake.calls == 0
    record = row(kwargs)
    assert record.status == MessageStatus.PROCESSING
    assert record.attempts == 1


def test_the_same_standard_message_sent_twice_runs_once(sqs_untouched, handler):
    # Another producer put one StandardMessage on the queue twice: two SQS messages, one row.
    body = json.dumps(build_standard_message(message=processing(), queue=QUEUE, source="lambda"))
    first, second = delivery(body), delivery(body)
    fake = handler()
    run(tasks.processing, first)

    result = run(tasks.processing, second)

    assert result.state == "IGNORED"  # acknowledged: the copy is deleted
    assert fake.calls == 1
    assert Message.objects.count() == 1
    assert kinds(Message.objects.get()).count(EventKind.SUCCEEDED) == 1


def test_a_finished_message_delivered_again_is_not_run_again_nor_its_result_overwritten(
    sqs_untouched, handler, stored_results
):
    kwargs = delivery(processing())
    fake = handler(result={"first": True})
    run(tasks.processing, kwargs)

    result = run(tasks.processing, again(kwargs))

    assert result.state == "IGNORED"
    assert fake.calls == 1
    record = row(kwargs)
    assert record.status == MessageStatus.SUCCEEDED
    assert kinds(record).count(EventKind.SUCCEEDED) == 1
    assert record.events.last().detail["duplicate"] is True
    assert selectors.message_task_result(message=record).result == {"first": True}


# --- Messages no family takes ---------------------------------------------------------------------


def test_an_unroutable_message_is_failed_with_the_reason_and_kept_in_the_dlq(sqs, boto_sqs):
    kwargs = delivery({"task_type": "resize_image", "message": "no family takes this"}, queue="default")
    reason = "unknown task_type 'resize_image'; expected one of data_polling, processing, notification"

    result = run(tasks.unroutable_message, kwargs)

    assert result.result == {"failed": reason}
    record = row(kwargs)
    assert record.status == MessageStatus.FAILED
    assert record.last_error == reason
    assert kinds(record) == [EventKind.RECEIVED, EventKind.PROCESSING, EventKind.FAILED]
    [dead] = dead_letters(boto_sqs, "default")
    assert dead["id"] == record.body["id"]
    assert dead["task_type"] == "resize_image"
    assert dead["last_error"] == reason


@pytest.mark.parametrize(
    "raw_body, reason",
    [
        ("plain text, not a StandardMessage", "the message has no task_type"),
        ('{"message": "no task_type at all"}', "the message has no task_type"),
    ],
)
def test_a_body_no_family_can_read_fails_with_the_reason(sqs, boto_sqs, raw_body, reason):
    kwargs = delivery(raw_body, queue="default")

    run(tasks.unroutable_message, kwargs)

    record = row(kwargs)
    assert record.status == MessageStatus.FAILED
    assert record.last_error == reason
    assert len(dead_letters(boto_sqs, "default")) == 1


def test_an_unroutable_message_delivered_twice_is_failed_once(sqs, boto_sqs):
    kwargs = delivery({"message": "no task_type at all"}, queue="default")
    run(tasks.unroutable_message, kwargs)

    result = run(tasks.unroutable_message, again(kwargs))

    assert result.state == "IGNORED"
    assert len(dead_letters(boto_sqs, "default")) == 1


# --- Outcomes that cannot be recorded ----------------------------------------------------------


def test_an_outcome_that_cannot_be_recorded_leaves_the_message_on_its_queue(sqs, handler, monkeypatch):
    from sqs_app import errors as sqs_errors

    kwargs = delivery(processing())
    handler(PermanentTaskError("bad options"))

    def dlq_unreachable(**kwargs):
        raise sqs_errors.SQSUnavailable()

    # The DLQ cannot be reached, so the failure cannot be kept anywhere yet.
    monkeypatch.setattr(lifecycle, "dead_letter_send", dlq_unreachable)

    back = returned_to_queue(run(tasks.processing, kwargs))

    assert back.delay == tasks.UNRECORDED_RETRY_SECONDS
    record = row(kwargs)
    assert record.status == MessageStatus.PROCESSING
    assert "failed" not in kinds(record)


@pytest.mark.parametrize("receive_count, delay", [(2, 20), (3, 40), (9, 75)])
def test_an_unrecorded_outcome_waits_longer_with_each_receive_up_to_the_setting(
    sqs, handler, monkeypatch, settings, receive_count, delay
):
    from sqs_app import errors as sqs_errors

    settings.TASK_UNRECORDED_RETRY_MAX_SECONDS = 75
    handler(PermanentTaskError("bad options"))

    def dlq_unreachable(**kwargs):
        raise sqs_errors.SQSUnavailable()

    monkeypatch.setattr(lifecycle, "dead_letter_send", dlq_unreachable)

    back = returned_to_queue(run(tasks.processing, delivery(processing()) | {"receive_count": receive_count}))

    assert back.delay == delay


def test_a_claim_the_database_refuses_leaves_the_message_on_its_queue_longer_each_time(
    sqs_untouched, monkeypatch
):
    def database_down(**kwargs):
        raise DatabaseError("could not connect to server")

    monkeypatch.setattr(lifecycle, "message_claim", database_down)
    kwargs = delivery(processing())

    delays = [
        returned_to_queue(run(tasks.processing, {**kwargs, "receive_count": n})).delay for n in (1, 2, 3)
    ]

    assert delays == [10, 20, 40]
    assert not Message.objects.exists()


# --- Poison messages from other producers ------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, reason",
    [
        (
            '{"task_type": "processing", "data": {"note": "\\u0000"}}',
            "data.note: Contains a character SQS does not accept (U+0000).",
        ),
        (
            '{"task_type": "processing", "data": {"n": 1e400}}',
            "data.n: Numbers must be finite (this one is too large, or not a number).",
        ),
        (
            '{"task_type": "processing", "d": ' + "[" * 5000 + "]" * 5000 + "}",
            "Nested deeper than 64 levels.",
        ),
    ],
)
def test_a_poison_message_is_recorded_as_failed_with_the_reason_and_kept_in_the_dlq(
    sqs, boto_sqs, raw, reason
):
    from sqs_app.services import parse_body
    from tasks_app.worker import route

    kwargs = delivery(raw)
    task = getattr(tasks, route(parse_body(raw)))

    result = run(task, kwargs)

    assert task is tasks.unroutable_message
    assert result.state == "SUCCESS"  # recorded and acknowledged: it never comes back to stall a worker
    record = row(kwargs)
    assert record.status == MessageStatus.FAILED
    assert record.last_error == f"the message body cannot be handled as JSON: {reason}"
    assert record.body == raw  # visible in history as it arrived
    url = boto_sqs.get_queue_url(QueueName=queue_spec(QUEUE).dlq_name)["QueueUrl"]
    [dead] = boto_sqs.receive_message(QueueUrl=url, VisibilityTimeout=60)["Messages"]
    assert dead["Body"] == raw  # kept byte for byte, for a replay once the producer is fixed
