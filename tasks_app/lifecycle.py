"""A message's life in a worker: claimed once, then exactly one recorded outcome.

SQS delivers at least once, and the same StandardMessage may even be sent
twice. The history row (sqs_app.models.Message) is the lock that turns that
into one outcome:

- `message_receive` (in the worker's consumer) records the delivery and
  finds the row, whoever produced the message.
- `message_claim` (in the task) locks the row and gives the message to one
  Celery task id.
  A second delivery (another task id) or a message whose outcome is already
  recorded is reported as a duplicate and not processed again. A redelivery
  of the *same* task (its worker was killed) takes the claim back.
- the outcome functions record succeeded / retrying / failed / dead_lettered,
  each as a status and an event, in one transaction.
"""

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from sqs_app.models import EventKind, Message, MessageEvent, MessageStatus
from sqs_app.services import dead_letter_send, message_record_received, parse_body

logger = logging.getLogger(__name__)

WORKER = "worker"

FINISHED = MessageStatus.finished()


@dataclass(frozen=True)
class Claim:
    record: Message
    body: object
    duplicate: bool = False


def message_receive(*, queue: str, sqs_message_id: str, raw_body: str, receive_count: int = 1) -> Message:
    """Record that a worker took a message off a queue (sqs_app.services does the work)."""
    return message_record_received(
        queue=queue,
        sqs_message_id=sqs_message_id,
        body=parse_body(raw_body),
        actor=WORKER,
        receive_count=receive_count,
    )


def message_claim(*, message_pk: int, task_id: str) -> Claim:
    """Give the message to `task_id` and record `processing`, or report a duplicate."""
    with transaction.atomic():
        record = Message.objects.select_for_update().get(pk=message_pk)
        owner = record.celery_task_id
        if record.status in FINISHED or (owner and owner != task_id):
            reason = "outcome already recorded" if record.status in FINISHED else f"owned by task {owner}"
            _event(record, EventKind.PROCESSING, duplicate=True, task_id=task_id, reason=reason)
            return Claim(record=record, body=record.body, duplicate=True)
        now = timezone.now()
        record.celery_task_id = task_id
        record.status = MessageStatus.PROCESSING
        record.attempts += 1
        record.processing_started_at = record.processing_started_at or now
        record.save()
        _event(record, EventKind.PROCESSING, attempt=record.attempts, task_id=task_id)
    return Claim(record=record, body=record.body)


def message_succeeded(record: Message, *, summary: dict | None = None) -> None:
    _finish(record, MessageStatus.SUCCEEDED, EventKind.SUCCEEDED, error="", **(summary or {}))


def message_retrying(record: Message, *, error: str, countdown: float) -> None:
    with transaction.atomic():
        record.status = MessageStatus.RETRYING
        record.last_error = error
        record.save(update_fields=["status", "last_error", "updated_at"])
        _event(record, EventKind.RETRYING, error=error, retry_in_seconds=countdown, attempt=record.attempts)


def message_failed(record: Message, *, error: str, body: object) -> None:
    """A permanent failure: recorded, and the message kept in the DLQ for a replay."""
    dlq_message_id = dead_letter_send(queue=record.queue, body=body, error=error, retry_count=0)
    _finish(record, MessageStatus.FAILED, EventKind.FAILED, error=error, dlq_message_id=dlq_message_id)


def message_dead_lettered(record: Message, *, error: str, body: object, retry_count: int) -> None:
    """Retries ran out: the StandardMessage goes to the DLQ with its retry_count and error."""
    dlq_message_id = dead_letter_send(queue=record.queue, body=body, error=error, retry_count=retry_count)
    _finish(
        record,
        MessageStatus.DEAD_LETTERED,
        EventKind.DEAD_LETTERED,
        error=error,
        retry_count=retry_count,
        dlq_message_id=dlq_message_id,
    )


def _finish(record: Message, status: str, kind: str, *, error: str, **detail) -> None:
    with transaction.atomic():
        record.status = status
        record.last_error = error
        record.finished_at = timezone.now()
        record.save(update_fields=["status", "last_error", "finished_at", "updated_at"])
        _event(record, kind, **({"error": error} if error else {}), **detail)


def _event(record: Message, kind: str, **detail) -> None:
    MessageEvent.objects.create(message=record, kind=kind, actor=WORKER, detail=detail)
