"""Log context: the request id and the message being worked on, on every line; nothing private above DEBUG.

- `RequestIdFilter` (on every handler) stamps each record with the current
  request id and with whatever `bind_message_context` bound, so that the JSON
  formatter writes them as fields of the same object (`message_id`,
  `correlation_id`, ...) and one grep for a correlation id follows a message.
- `bind_message_context(message_id=..., correlation_id=...)` is for the code
  that handles one message (the API's send, a worker's task): it binds until
  the returned token is given to `reset_message_context`, or for the body of
  `with message_context(...)`. Context variables, so that it is right under
  gunicorn's threads and in each Celery pool process alike.
- `configure` (settings.LOGGING_CONFIG) also routes Python warnings into
  the log, so that they are records in the chosen format too.
- `CeleryResultFilter` keeps task return values (a notification's recipient,
  a poll's data) out of Celery's INFO "succeeded" line.
"""

import contextlib
import contextvars
import logging
import logging.config
from collections.abc import Iterator

from .request_context import get_request_id

logger = logging.getLogger("sqs_app.messages")

_message_context: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "message_context", default=None
)


def bind_message_context(*, message_id: str | None = None, correlation_id: str | None = None, **fields):
    """Put these fields on every log line of this context from now on. Returns a reset token."""
    values = {"message_id": message_id, "correlation_id": correlation_id, **fields}
    merged = {**(_message_context.get() or {}), **{k: str(v) for k, v in values.items() if v is not None}}
    return _message_context.set(merged)


def reset_message_context(token) -> None:
    _message_context.reset(token)


@contextlib.contextmanager
def message_context(**fields) -> Iterator[None]:
    token = bind_message_context(**fields)
    try:
        yield
    finally:
        reset_message_context(token)


def bound_context() -> dict:
    return dict(_message_context.get() or {})


class RequestIdFilter(logging.Filter):
    """Stamps every record with the request id ("-" outside a request) and the bound message context."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = get_request_id() or "-"
        context = _message_context.get() or {}
        for key, value in context.items():
            if not hasattr(record, key):
                setattr(record, key, value)
        if not hasattr(record, "context"):
            # For the text format: the bound fields, as key=value.
            record.context = "".join(f" {key}={value}" for key, value in context.items())
        return True


def configure(config: dict) -> None:
    """settings.LOGGING_CONFIG: Django's dictConfig, and Python warnings as log records too.

    Without captureWarnings a warning (a library's, or Celery's about running
    as root) is printed to stderr as plain text, outside LOG_FORMAT=json.
    """
    logging.config.dictConfig(config)
    logging.captureWarnings(True)


class CeleryResultFilter(logging.Filter):
    """Celery logs a task's return value at INFO; it may carry recipients and payloads."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, dict) and "return_value" in record.args and record.levelno > logging.DEBUG:
            record.args = {**record.args, "return_value": "(result hidden above DEBUG)"}
        return True


def log_message_sent(*, message_id: str | None, body: dict, queue: str, via: str) -> None:
    """The one log line for each message sent, with its ids (not its body)."""
    logger.info(
        "Message %s sent to %s (correlation_id %s)",
        message_id,
        queue,
        body.get("correlation_id"),
        extra={
            "message_id": message_id,
            "correlation_id": body.get("correlation_id"),
            "id": body.get("id"),
            "queue": queue,
            "task_type": body.get("task_type"),
            "via": via,
        },
    )
