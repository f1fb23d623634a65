"""Celery tasks. Thin: each takes a history row id and hands it to `MessageTask.process`.

The retry policy lives here, once, in `MessageTask`: a TemporaryTaskError is
retried after TASK_RETRY_BASE_SECONDS * 2**retries, at most TASK_MAX_RETRIES
times, then dead-lettered; a PermanentTaskError fails at once. Both end with
the original message on the queue's DLQ, from where it can be replayed.
"""

import logging

from celery import Task, shared_task
from celery.exceptions import Reject, SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError

from sqs_app.errors import WipsieError

from . import lifecycle, polling
from .errors import PermanentTaskError, TemporaryTaskError
from .families import HANDLERS, validated_task_data

logger = logging.getLogger(__name__)


class MessageTask(Task):
    """Claim the message, run its family's handler, record exactly one outcome."""

    # An expected failure: Celery logs it without a traceback.
    throws = (PermanentTaskError,)

    def process(self, message_pk: int, *, task_type: str):
        claim = self.recorded(lifecycle.message_claim, message_pk=message_pk, task_id=self.request.id)
        if claim.duplicate:
            return {"duplicate": True, "message_id": claim.record.sqs_message_id}
        record = claim.record
        try:
            data = validated_task_data(claim.body, task_type=task_type)
            result = HANDLERS[task_type](message=claim.body, data=data, record=record)
        except (TemporaryTaskError, SoftTimeLimitExceeded, DatabaseError) as exc:
            self._retry_or_dead_letter(record, claim.body, exc)
        except PermanentTaskError as exc:
            self.recorded(lifecycle.message_failed, record, error=str(exc), body=claim.body)
            raise
        except Exception as exc:
            # A bug, not a property of the message: fail it (it stays replayable
            # from the DLQ once fixed) rather than retry something that cannot pass.
            logger.exception("Unexpected error processing message %s", record.pk)
            error = f"internal error: {type(exc).__name__}"
            self.recorded(lifecycle.message_failed, record, error=error, body=claim.body)
            raise
        self.recorded(lifecycle.message_succeeded, record)
        return result

    def recorded(self, record_step, *args, **kwargs):
        """Record a step durably, or hand the task back to SQS to run again later.

        If the database or SQS (the DLQ) is down, acknowledging now would lose
        the outcome. Rejecting with requeue makes the same task (same id, so it
        takes its claim back) visible again after a short wait, and it does not
        count as one of the message's retries.
        """
        try:
            return record_step(*args, **kwargs)
        except (WipsieError, DatabaseError) as exc:
            logger.warning("Could not record %s (%s); the task will run again", record_step.__name__, exc)
            raise Reject(exc, requeue=True) from exc

    def _retry_or_dead_letter(self, record, body, exc: Exception):
        error = str(exc) or type(exc).__name__
        retries = self.request.retries
        if retries < settings.TASK_MAX_RETRIES:
            countdown = settings.TASK_RETRY_BASE_SECONDS * 2**retries
            self.recorded(lifecycle.message_retrying, record, error=error, countdown=countdown)
            raise self.retry(exc=exc, countdown=countdown, max_retries=settings.TASK_MAX_RETRIES)
        self.recorded(lifecycle.message_dead_lettered, record, error=error, body=body, retry_count=retries)
        raise exc


@shared_task(bind=True, base=MessageTask, name="data_polling")
def data_polling(self, message_pk: int):
    return self.process(message_pk, task_type="data_polling")


@shared_task(bind=True, base=MessageTask, name="processing")
def processing(self, message_pk: int):
    return self.process(message_pk, task_type="processing")


@shared_task(bind=True, base=MessageTask, name="notification")
def notification(self, message_pk: int):
    return self.process(message_pk, task_type="notification")


@shared_task(bind=True, base=MessageTask, name="unroutable_message")
def unroutable_message(self, message_pk: int, reason: str):
    """A message no task family accepts: failed, with the reason, and kept in the DLQ."""
    claim = self.recorded(lifecycle.message_claim, message_pk=message_pk, task_id=self.request.id)
    if claim.duplicate:
        return {"duplicate": True}
    self.recorded(lifecycle.message_failed, claim.record, error=reason, body=claim.body)
    return {"failed": reason}


@shared_task(name="tasks_app.tasks.enqueue_due_polls", ignore_result=True)
def enqueue_due_polls():
    try:
        return polling.enqueue_due_polls()
    except WipsieError:
        logger.exception("Could not enqueue due polls; the next tick tries again")


TASKS_BY_TYPE = {"data_polling": data_polling, "processing": processing, "notification": notification}
