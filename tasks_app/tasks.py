"""Celery tasks. Thin: each takes one SQS delivery and hands it to `MessageTask.process`.

A family's task runs a message taken straight off its queue (tasks_app.worker
makes the task message). The retry policy lives here, once, in
`MessageTask`:

- a TemporaryTaskError (or a database error, or the soft time limit) is
  retried on the message's own queue: its visibility is set to
  TASK_RETRY_BASE_SECONDS * 2**(attempt - 1) and it comes back by itself.
  After TASK_MAX_RETRIES retries it is dead-lettered;
- a PermanentTaskError fails at once.

Both end with the original message on the queue's DLQ, from where it can be
replayed, and the message deleted from its queue.
"""

import logging

from celery import Task, shared_task
from celery.exceptions import Ignore, SoftTimeLimitExceeded
from celery.signals import task_postrun, task_prerun
from django.conf import settings
from django.db import DatabaseError, connections

from sqs_app.errors import WipsieError
from sqs_app.logging import bind_message_context, reset_message_context
from sqs_app.operations import runs
from sqs_app.services import body_problem, message_send

from . import lifecycle, poll_schedules
from .errors import PermanentTaskError, TemporaryTaskError
from .families import HANDLERS, validated_task_data
from .lifecycle import Claim, Delivery
from .models import PollSchedule
from .worker import ReturnToQueue

logger = logging.getLogger(__name__)

# When an outcome cannot be recorded (database or DLQ down), the message comes
# back after this long, doubling with each receive, up to
# settings.TASK_UNRECORDED_RETRY_MAX_SECONDS.
UNRECORDED_RETRY_SECONDS = 10
# An operator run's slice that met the database or SQS down is tried again after this long.
OPERATOR_RUN_RETRY_SECONDS = 30


class MessageTask(Task):
    """Claim the message, run its family's handler, record exactly one outcome."""

    Request = "tasks_app.worker:MessageRequest"
    # An expected failure: Celery logs it without a traceback.
    throws = (PermanentTaskError,)

    def process(self, delivery: Delivery, *, task_type: str | None, unroutable: str = ""):
        claim = self.recorded(lifecycle.message_claim, delivery=delivery, task_id=self.request.id)
        if claim.finished:
            self.recorded(lifecycle.duplicate_noted, claim)
            raise Ignore()  # acknowledged (deleted); no task result written over the real one
        if claim.held_for_seconds:
            raise ReturnToQueue("another delivery of this message is running", delay=claim.held_for_seconds)
        if unroutable:
            self.recorded(lifecycle.message_failed, claim, error=unroutable)
            return {"failed": unroutable}
        try:
            data = validated_task_data(claim.body, task_type=task_type)
            result = HANDLERS[task_type](message=claim.body, data=data, record_pk=claim.pk)
        except (TemporaryTaskError, SoftTimeLimitExceeded, DatabaseError) as exc:
            if isinstance(exc, DatabaseError):
                _drop_broken_connection()
            self._retry_or_dead_letter(claim, exc)
        except PermanentTaskError as exc:
            self.recorded(lifecycle.message_failed, claim, error=str(exc))
            raise
        except Exception as exc:
            # A bug, not a property of the message: fail it (it stays replayable
            # from the DLQ once fixed) rather than retry something that cannot pass.
            logger.exception("Unexpected error processing message %s", delivery.sqs_message_id)
            self.recorded(lifecycle.message_failed, claim, error=f"internal error: {type(exc).__name__}")
            raise
        self.recorded(lifecycle.message_succeeded, claim)
        return result

    def recorded(self, record_step, *args, **kwargs):
        """Record a step durably, or leave the message on its queue to run again later.

        If the database or SQS (the DLQ) is down, acknowledging now would lose
        the outcome. The message comes back after a wait that grows with its
        receive count, and does not count as one of its retries.
        """
        try:
            return record_step(*args, **kwargs)
        except (WipsieError, DatabaseError) as exc:
            if isinstance(exc, DatabaseError):
                _drop_broken_connection()
            delivery = kwargs.get("delivery") or args[0].delivery
            delay = min(
                UNRECORDED_RETRY_SECONDS * 2 ** max(0, delivery.receive_count - 1),
                settings.TASK_UNRECORDED_RETRY_MAX_SECONDS,
            )
            logger.warning(
                "Could not record %s for message %s (%s); it comes back in %s s",
                record_step.__name__,
                delivery.sqs_message_id,
                exc,
                delay,
            )
            raise ReturnToQueue(f"could not record {record_step.__name__}", delay=delay) from exc

    def _retry_or_dead_letter(self, claim: Claim, exc: Exception):
        error = str(exc) or type(exc).__name__
        retries_done = claim.attempt - 1
        if retries_done < settings.TASK_MAX_RETRIES:
            delay = int(settings.TASK_RETRY_BASE_SECONDS * 2**retries_done) or 1
            self.recorded(lifecycle.message_retrying, claim, error=error, delay=delay)
            logger.info(
                "Attempt %s failed (%s); retry %s in %s s", claim.attempt, error, retries_done + 1, delay
            )
            raise ReturnToQueue(f"retry {retries_done + 1} in {delay} s: {error}", delay=delay) from exc
        self.recorded(lifecycle.message_dead_lettered, claim, error=error)
        raise exc


@task_prerun.connect
def _bind_message_to_log_lines(task=None, kwargs=None, **extra) -> None:
    """Every log line of a message's task names the message, Celery's own lines included.

    One grep for the message id or the correlation id then follows it from the
    API's "sent" line through every attempt to its outcome.
    """
    if not isinstance(task, MessageTask) or not kwargs:
        return
    # The ids come with the task's arguments (tasks_app.worker read them from the body).
    task.request.wipsie_log_context = bind_message_context(
        message_id=kwargs.get("sqs_message_id"),
        correlation_id=kwargs.get("correlation_id"),
        id=kwargs.get("standard_id"),
        queue=kwargs.get("queue"),
        attempt=kwargs.get("receive_count"),
    )


@task_postrun.connect
def _unbind_message(task=None, **extra) -> None:
    token = getattr(getattr(task, "request", None), "wipsie_log_context", None)
    if token is not None:
        reset_message_context(token)
        task.request.wipsie_log_context = None


def _drop_broken_connection() -> None:
    """After a database error, let the next statement reconnect instead of failing too.

    Pool processes keep their connection across tasks (CELERY_DB_REUSE_MAX),
    so a connection the database dropped would fail every later task; Django
    closes it here if it is no longer usable (one SELECT 1, only after an error).
    """
    for conn in connections.all(initialized_only=True):
        if not conn.in_atomic_block:  # inside a transaction (a test's), it is not ours to close
            conn.close_if_unusable_or_obsolete()


@shared_task(bind=True, base=MessageTask, name="data_polling")
def data_polling(self, **delivery):
    return self.process(Delivery(**delivery), task_type="data_polling")


@shared_task(bind=True, base=MessageTask, name="processing")
def processing(self, **delivery):
    return self.process(Delivery(**delivery), task_type="processing")


@shared_task(bind=True, base=MessageTask, name="notification")
def notification(self, **delivery):
    return self.process(Delivery(**delivery), task_type="notification")


@shared_task(bind=True, base=MessageTask, name="unroutable_message")
def unroutable_message(self, **delivery):
    """A message no task family accepts: failed, with the reason, and kept in the DLQ."""
    delivery = Delivery(**delivery)
    return self.process(delivery, task_type=None, unroutable=_unroutable_reason(delivery))


def _unroutable_reason(delivery: Delivery) -> str:
    problem = body_problem(delivery.raw_body)
    if problem:
        return f"the message body cannot be handled as JSON: {problem}"
    body = delivery.body
    task_type = body.get("task_type") if isinstance(body, dict) else None
    if not task_type:
        return "the message has no task_type"
    return f"unknown task_type {task_type!r}; expected one of {', '.join(HANDLERS)}"


@shared_task(name="tasks_app.tasks.send_scheduled_poll", ignore_result=True)
def send_scheduled_poll(schedule_id: int):
    """Beat's task for a recurring poll: put one data_polling message on its queue."""
    schedule = PollSchedule.objects.filter(pk=schedule_id).first()
    if schedule is None:
        logger.warning("Recurring poll %s no longer exists; nothing sent", schedule_id)
        return
    if schedule.stopped_at is not None:
        # Stopping is final, even if someone enabled its periodic task again by hand.
        logger.warning("Recurring poll %s is stopped; nothing sent", schedule_id)
        return
    message_send(
        queue=poll_schedules.POLL_QUEUE,
        source="scheduler",
        message=poll_schedules.scheduled_message(schedule),
    )


@shared_task(bind=True, name="tasks_app.tasks.operator_run", ignore_result=True, max_retries=None)
def operator_run(self, run_id: int):
    """One slice of an operator run (sqs_app.operations.runs), then the next slice's task.

    Late acknowledgement (the setting) gives the task back to SQS if the worker
    dies during a slice; the run's lease and per-item journal make the next
    delivery go on from where it stopped, without acting twice.
    """
    try:
        again_in = runs.run_slice(run_id=run_id, worker=self.request.hostname or "")
    except (DatabaseError, WipsieError) as exc:
        if isinstance(exc, DatabaseError):
            _drop_broken_connection()
        logger.warning(
            "Operator run %s paused (%s); trying again in %s s", run_id, exc, OPERATOR_RUN_RETRY_SECONDS
        )
        raise self.retry(exc=exc, countdown=OPERATOR_RUN_RETRY_SECONDS) from exc
    if again_in is not None:
        self.apply_async(args=[run_id], countdown=again_in)
