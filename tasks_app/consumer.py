"""The worker's consumer for Wipsie's task queues, whose bodies are plain StandardMessage JSON.

Celery's documented way to consume messages that are not Celery tasks is a
consumer bootstep returning kombu consumers. Its callback runs in the worker's
event loop, so it only hands off: record the delivery, enqueue the family's
Celery task (on Celery's own SQS queue), then delete the raw message. Each
step is durable before the next, so a worker killed at any line loses
nothing: an unfinished hand-off leaves the raw message to reappear, and a
repeated one is recognised by the task's claim (tasks_app.lifecycle).
"""

import functools
import json
import logging

from celery import bootsteps
from django.conf import settings
from django.db import close_old_connections
from kombu import Consumer, Queue

from sqs_app.queues import queue_spec

from . import lifecycle
from .tasks import TASKS_BY_TYPE, unroutable_message

logger = logging.getLogger(__name__)


class StandardMessageConsumer(bootsteps.ConsumerStep):
    def get_consumers(self, channel):
        return [
            Consumer(
                channel,
                queues=[Queue(queue_spec(name).physical_name)],
                on_message=functools.partial(on_raw_message, name),
                prefetch_count=settings.WIPSIE_HANDOFF_PREFETCH,
            )
            for name in settings.WIPSIE_WORKER_QUEUES
        ]


def on_raw_message(queue: str, message) -> None:
    # The body exactly as SQS holds it: kombu would base64-decode a body that
    # looks like base64, and treats a top-level "properties" key as its own.
    sqs_message = message.delivery_info["sqs_message"]
    try:
        hand_off(queue=queue, sqs_message=sqs_message)
    except Exception:
        logger.exception(
            "Could not hand off SQS message %s; it will be redelivered", sqs_message["MessageId"]
        )
        # Forget it without deleting: SQS makes it visible again after the
        # visibility timeout. (Rejecting with requeue would republish it wrapped
        # in a kombu envelope, which is no longer the producer's message.)
        message.channel.qos.reject(message.delivery_tag, requeue=False)
        return
    message.ack()


def hand_off(*, queue: str, sqs_message: dict) -> None:
    close_old_connections()  # the consumer is long-lived; its DB connection may not be
    raw_body = sqs_message["Body"]
    record = lifecycle.message_receive(
        queue=queue,
        sqs_message_id=sqs_message["MessageId"],
        raw_body=raw_body,
        receive_count=int(sqs_message.get("Attributes", {}).get("ApproximateReceiveCount", 1)),
    )
    task_type = _task_type(raw_body)
    task = TASKS_BY_TYPE.get(task_type)
    if task is None:
        reason = (
            f"unknown task_type {task_type!r}; expected one of {', '.join(TASKS_BY_TYPE)}"
            if task_type
            else "the message has no task_type"
        )
        unroutable_message.delay(record.pk, reason)
    else:
        task.delay(record.pk)


def _task_type(raw_body: str) -> str | None:
    try:
        body = json.loads(raw_body)
    except ValueError:
        return None
    value = body.get("task_type") if isinstance(body, dict) else None
    return value if isinstance(value, str) else None
