"""How a raw SQS message becomes a Celery task, in the worker's main process.

Producers (the API, a Lambda, the console) put plain StandardMessage JSON on
a family's queue. The worker consumes that queue as Celery consumes any
queue; `MessageConsumer` (settings.CELERY_WORKER_CONSUMER) only rewrites a
message that carries no Celery headers into a protocol-2 task message, in
place, before Celery's own handler sees it. From there it is an ordinary
Celery task: the pool runs it with time limits, late acknowledgement
deletes the message once its outcome is recorded, a lost worker process
leaves it to SQS. Nothing is re-published: the message on its own queue is
the unit of work, for its whole life.

The task id is SQS's MessageId, so every delivery of one message, its
retries included, is the same task, and its django-celery-results row is
found from the history row (Message.celery_task_id).
"""

import json
import logging

from celery.exceptions import Reject
from celery.utils.serialization import get_pickled_exception
from celery.worker.consumer import Consumer
from celery.worker.request import Request

from sqs_app import sqs_client
from sqs_app.errors import WipsieError
from sqs_app.services import parse_body, standard_id_of

logger = logging.getLogger(__name__)

# task_type -> the Celery task that runs that family (tasks_app.tasks).
FAMILY_TASKS = {"data_polling": "data_polling", "processing": "processing", "notification": "notification"}
UNROUTABLE_TASK = "unroutable_message"

# What Celery's protocol 2 calls "embed": no callbacks, chains or chords.
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


class ReturnToQueue(Reject):
    """Leave the message on its queue, to be received again in `delay` seconds.

    Raised by a task for a retry (its backoff), for a duplicate whose other
    delivery is still running (until that one's lease ends), and when the
    outcome cannot be recorded. The worker's main process sets the visibility
    (MessageRequest), then forgets the delivery without deleting it.
    """

    def __init__(self, reason: str = "", delay: int = 0):
        super().__init__(reason, requeue=True)
        self.delay = delay

    def __reduce__(self):
        # Crosses from the pool process to the main process pickled.
        return (type(self), (self.reason, self.delay))


class MessageRequest(Request):
    """A task request that turns ReturnToQueue into a visibility change on the same receipt."""

    def on_failure(self, exc_info, send_failed_event=True, return_ok=False):
        exc = get_pickled_exception(exc_info.exception)
        exc = getattr(exc, "exc", exc)
        if isinstance(exc, ReturnToQueue):
            self._set_visibility(exc.delay)
        return super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)

    def _set_visibility(self, seconds: int) -> None:
        delivery = self._message.delivery_info
        try:
            sqs_client.change_visibility(
                queue=delivery.get("routing_key", ""),
                receipt_handle=delivery["sqs_message"]["ReceiptHandle"],
                seconds=max(0, min(int(seconds), 43200)),  # SQS allows at most 12 hours
                url=delivery["sqs_queue"],
            )
        except (WipsieError, KeyError) as exc:
            # The message still comes back, when its current visibility ends.
            logger.warning("Could not set the visibility of message %s: %s", self.id, exc)


class MessageConsumer(Consumer):
    def create_task_handler(self, *args, **kwargs):
        on_task_received = super().create_task_handler(*args, **kwargs)

        def on_message(message):
            if "task" not in (message.headers or {}):
                as_task_message(message)
            return on_task_received(message)

        return on_message


def as_task_message(message) -> None:
    """Rewrite a plain SQS message into a Celery protocol-2 task message, in place.

    The raw body is read from the SQS message itself: kombu base64-decodes
    bodies that look like base64 and takes a top-level `properties` key for
    its own envelope. `exchange` and `routing_key` are what kombu needs to
    treat a reject as this queue's (FACTS.md).
    """
    delivery = message.delivery_info
    sqs_message = delivery["sqs_message"]
    queue = _logical_queue(message)
    raw_body = sqs_message["Body"]
    # Parsed once, here: the task gets what its log lines need (the ids) with
    # its arguments, and parses the body again only to claim and process it.
    body = parse_body(raw_body)
    system = sqs_message.get("Attributes", {})
    kwargs = {
        "queue": queue,
        "sqs_message_id": sqs_message["MessageId"],
        "receive_count": int(system.get("ApproximateReceiveCount", 1)),
        "sent_timestamp": int(system["SentTimestamp"]) if system.get("SentTimestamp") else None,
        "raw_body": raw_body,
        "attributes": _attribute_values(sqs_message.get("MessageAttributes") or {}),
        "correlation_id": _correlation_id_of(body),
        "standard_id": standard_id_of(body),
    }
    message_id = sqs_message["MessageId"]
    message.headers = {
        "lang": "py",
        "task": route(body),
        "id": message_id,
        "root_id": message_id,
        "parent_id": None,
        "group": None,
        "retries": 0,
        "timelimit": [None, None],
        "eta": None,
        "expires": None,
        "ignore_result": False,
        "argsrepr": "()",
        # The body stays in the history row; results keep only what names the message.
        "kwargsrepr": repr({"queue": queue, "sqs_message_id": message_id}),
        "origin": "sqs",
    }
    message.body = json.dumps([[], kwargs, _EMBED]).encode()
    message.content_type = "application/json"
    message.content_encoding = "utf-8"
    message._decoded_cache = None
    delivery["exchange"] = ""
    delivery["routing_key"] = queue


def route(body: object) -> str:
    """The Celery task for a parsed body: its task_type's family, or the unroutable task.

    A body Wipsie cannot keep as JSON comes from sqs_app.services.parse_body as
    the raw string: unroutable.
    """
    task_type = body.get("task_type") if isinstance(body, dict) else None
    return FAMILY_TASKS.get(task_type, UNROUTABLE_TASK) if isinstance(task_type, str) else UNROUTABLE_TASK


def _correlation_id_of(body: object) -> str | None:
    value = body.get("correlation_id") if isinstance(body, dict) else None
    return value if isinstance(value, str) else None


def _logical_queue(message) -> str:
    url = message.delivery_info["sqs_queue"]
    return message.channel.queue_names_by_url.get(url) or url.rsplit("/", 1)[-1]


def _attribute_values(attributes: dict) -> dict:
    return {
        name: {k: v for k, v in attribute.items() if k in ("StringValue", "DataType")}
        for name, attribute in attributes.items()
        if "StringValue" in attribute
    }
