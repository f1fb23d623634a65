"""The one module that talks to AWS: SQS, and SNS for notifications.

Nothing else imports boto3 or botocore.

- One boto3 client per process, built lazily and reused: building one costs
  tens of milliseconds, far more than a SendMessage. boto3 clients are
  thread-safe; the connection pool is sized for the web server's threads.
- Queue URLs are resolved once per process and cached.
- Every botocore failure leaves this module as a `WipsieError` with a stable
  code (sqs_app.errors), never as a raw botocore exception.
- Pages a person waits for (the admin's dashboard and queues page) read SQS
  inside `quick_calls()`: a second client with a short timeout and no retries,
  so that a hung SQS shows a notice in about a second instead of holding the
  page for the normal client's 30 s read timeout times three attempts.

The endpoint comes from boto3's own standard variable AWS_ENDPOINT_URL_SQS
(boto3 reads it itself), so a local emulator needs no code path of its own.
"""

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from django.conf import settings

from . import errors
from .queues import (
    DLQ_SUFFIX,
    LOGICAL_QUEUES,
    QueueSpec,
    all_queue_specs,
    celery_queue_spec,
    operator_queue_spec,
)

_lock = threading.Lock()
_clients: dict[str, object] = {}  # service name (or "sqs:quick") -> client, for this process only
_quick = threading.local()  # set inside quick_calls(), per thread
_clients_pid: int | None = None
_queue_urls: dict[str, str] = {}

_THROTTLING_CODES = {"ThrottlingException", "RequestThrottled", "Throttling", "OverLimit"}
_MISSING_QUEUE_CODES = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
_BAD_RECEIPT_CODES = {"ReceiptHandleIsInvalid", "InvalidParameterValue", "MessageNotInflight"}


def get_client(service: str = "sqs"):
    """The process's client for an AWS service ("sqs" or "sns").

    Rebuilt after a fork (Celery's prefork pool, gunicorn's workers): pooled
    sockets must not be shared between processes.
    """
    global _clients_pid
    pid = os.getpid()
    key = f"{service}:quick" if service == "sqs" and getattr(_quick, "active", False) else service
    client = _clients.get(key) if _clients_pid == pid else None
    if client is None:
        with _lock:
            if _clients_pid != pid:
                _clients.clear()
                _queue_urls.clear()
                _clients_pid = pid
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = _build_client(service, quick=key.endswith(":quick"))
    return client


@contextlib.contextmanager
def quick_calls() -> Iterator[None]:
    """SQS calls in this block (this thread only) give up after SQS_ADMIN_TIMEOUT_SECONDS, untried again.

    For reads a person is waiting on; never for sends or long polls.
    """
    previous = getattr(_quick, "active", False)
    _quick.active = True
    try:
        yield
    finally:
        _quick.active = previous


def _build_client(service: str, *, quick: bool = False):
    if quick:
        timeouts = {
            "connect_timeout": settings.SQS_ADMIN_TIMEOUT_SECONDS,
            "read_timeout": settings.SQS_ADMIN_TIMEOUT_SECONDS,
            # One attempt: a retry would only double the wait before the notice.
            "retries": {"mode": "standard", "total_max_attempts": 1},
        }
    else:
        timeouts = {
            "connect_timeout": settings.SQS_CONNECT_TIMEOUT_SECONDS,
            "read_timeout": settings.SQS_READ_TIMEOUT_SECONDS,
            # "standard" retries throttling and transient errors with backoff, 3 attempts.
            "retries": {"mode": "standard", "max_attempts": 3},
        }
    config = Config(
        region_name=settings.AWS_REGION,
        max_pool_connections=settings.SQS_MAX_POOL_CONNECTIONS,
        **timeouts,
    )
    credentials = {}
    if settings.AWS_ACCESS_KEY_ID and settings.AWS_SECRET_ACCESS_KEY:
        credentials = {
            "aws_access_key_id": settings.AWS_ACCESS_KEY_ID,
            "aws_secret_access_key": settings.AWS_SECRET_ACCESS_KEY,
        }
    endpoint_url = {"sqs": settings.AWS_ENDPOINT_URL_SQS, "sns": settings.AWS_ENDPOINT_URL_SNS}[service]
    endpoint = {"endpoint_url": endpoint_url} if endpoint_url else {}
    return boto3.session.Session().client(service, config=config, **credentials, **endpoint)


def reset() -> None:
    """Forget the client and cached queue URLs (after a settings change, in tests)."""
    global _clients_pid
    with _lock:
        _clients.clear()
        _clients_pid = None
        _queue_urls.clear()


@contextlib.contextmanager
def translated_errors(**context: str) -> Iterator[None]:
    """Turn botocore's exceptions into Wipsie's domain errors; `context` goes into details."""
    details = {key: value for key, value in context.items() if value}
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", ""), error.get("Message", "")
        details = {**details, "sqs_error_code": code}
        if code in _MISSING_QUEUE_CODES:
            raise errors.QueueNotProvisioned(details=details) from exc
        if code in _THROTTLING_CODES:
            raise errors.SQSThrottled(details=details) from exc
        if code == "ReceiptHandleIsInvalid":
            raise errors.InvalidReceiptHandle(details=details) from exc
        raise errors.SQSRequestFailed(f"Amazon SQS rejected the request: {message}", details=details) from exc
    except NoCredentialsError as exc:
        raise errors.SQSUnavailable(
            "No AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or give the process a role.",
            details=details,
        ) from exc
    except (BotoConnectionError, ReadTimeoutError) as exc:
        raise errors.SQSUnavailable(details={**details, "reason": type(exc).__name__}) from exc
    except BotoCoreError as exc:
        raise errors.SQSUnavailable(details={**details, "reason": type(exc).__name__}) from exc


def queue_url(logical_name: str) -> str:
    """The URL of a logical queue's SQS queue, resolved once per process."""
    return _cached_url(logical_name, operator_queue_spec(logical_name).physical_name)


def dlq_url(logical_name: str) -> str:
    """The URL of a logical queue's dead-letter queue, resolved once per process."""
    return _cached_url(logical_name + DLQ_SUFFIX, operator_queue_spec(logical_name).dlq_name)


def _cached_url(cache_key: str, physical_name: str) -> str:
    client = get_client()  # first, so that a fork has cleared the cache
    url = _queue_urls.get(cache_key)
    if url is None:
        with translated_errors(queue=cache_key):
            url = client.get_queue_url(QueueName=physical_name)["QueueUrl"]
        _queue_urls[cache_key] = url
    return url


# --- Messages -------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedMessage:
    message_id: str
    receipt_handle: str
    body: str
    attributes: dict  # message attributes, in SQS's own {"StringValue", "DataType"} form
    system_attributes: dict  # ApproximateReceiveCount, SentTimestamp, ...


@dataclass(frozen=True)
class BatchEntryResult:
    entry_id: str
    message_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None


def send_message(
    *, queue: str, body: str, attributes: dict | None = None, url: str | None = None, delay_seconds: int = 0
) -> str:
    """Send one message; returns SQS's MessageId. `url` overrides the logical queue's URL."""
    params = {"QueueUrl": url or queue_url(queue), "MessageBody": body}
    if attributes:
        params["MessageAttributes"] = attributes
    if delay_seconds:
        params["DelaySeconds"] = delay_seconds
    with translated_errors(queue=queue):
        return get_client().send_message(**params)["MessageId"]


def send_message_batch(*, queue: str, entries: list[dict], url: str | None = None) -> list[BatchEntryResult]:
    """One SendMessageBatch call. Each entry: {"Id", "MessageBody", "MessageAttributes"?}."""
    with translated_errors(queue=queue):
        response = get_client().send_message_batch(QueueUrl=url or queue_url(queue), Entries=entries)
    results = [
        BatchEntryResult(entry_id=ok["Id"], message_id=ok["MessageId"])
        for ok in response.get("Successful", [])
    ]
    results += [
        BatchEntryResult(
            entry_id=failed["Id"], error_code=failed.get("Code"), error_message=failed.get("Message")
        )
        for failed in response.get("Failed", [])
    ]
    return results


def receive_messages(
    *,
    queue: str,
    max_messages: int = 1,
    wait_time_seconds: int = 0,
    visibility_timeout: int | None = None,
    url: str | None = None,
) -> list[ReceivedMessage]:
    params = {
        "QueueUrl": url or queue_url(queue),
        "MaxNumberOfMessages": max_messages,
        "WaitTimeSeconds": wait_time_seconds,
        "MessageAttributeNames": ["All"],
        "MessageSystemAttributeNames": ["All"],
    }
    if visibility_timeout is not None:
        params["VisibilityTimeout"] = visibility_timeout
    with translated_errors(queue=queue):
        response = get_client().receive_message(**params)
    return [
        ReceivedMessage(
            message_id=raw["MessageId"],
            receipt_handle=raw["ReceiptHandle"],
            body=raw["Body"],
            attributes=_attribute_values(raw.get("MessageAttributes", {})),
            system_attributes=raw.get("Attributes", {}),
        )
        for raw in response.get("Messages", [])
    ]


def _attribute_values(attributes: dict) -> dict:
    """Keep only the fields a caller can use again (StringValue or BinaryValue, DataType)."""
    kept = {}
    for name, attribute in attributes.items():
        kept[name] = {
            key: value
            for key, value in attribute.items()
            if key in ("StringValue", "BinaryValue", "DataType")
        }
    return kept


def delete_message(*, queue: str, receipt_handle: str, url: str | None = None) -> None:
    with translated_errors(queue=queue):
        try:
            get_client().delete_message(QueueUrl=url or queue_url(queue), ReceiptHandle=receipt_handle)
        except ClientError as exc:
            # Over the JSON protocol a malformed handle is reported as a generic
            # InvalidParameterValue; for a delete it can only mean the handle.
            if exc.response.get("Error", {}).get("Code") in _BAD_RECEIPT_CODES:
                raise errors.InvalidReceiptHandle(details={"queue": queue}) from exc
            raise


def release_messages(*, queue: str, receipt_handles: list[str], url: str | None = None) -> None:
    """Make received messages visible again at once (visibility timeout 0). Best effort."""
    if not receipt_handles:
        return
    entries = [
        {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
        for index, handle in enumerate(receipt_handles)
    ]
    with contextlib.suppress(errors.WipsieError), translated_errors(queue=queue):
        get_client().change_message_visibility_batch(QueueUrl=url or queue_url(queue), Entries=entries)


def release_messages_all(*, queue: str, receipt_handles: list[str], url: str | None = None) -> None:
    """release_messages for any number of handles, ten per call."""
    for start in range(0, len(receipt_handles), 10):
        release_messages(queue=queue, receipt_handles=receipt_handles[start : start + 10], url=url)


def purge_queue(*, queue: str, dead_letters: bool = False) -> None:
    """PurgeQueue: SQS drops every message of the queue (or its DLQ) within a minute."""
    with translated_errors(queue=queue):
        url = dlq_url(queue) if dead_letters else queue_url(queue)
        get_client().purge_queue(QueueUrl=url)


def change_visibility(*, queue: str, receipt_handle: str, seconds: int, url: str | None = None) -> None:
    """Hide a received message for `seconds` more from now (0 makes it visible at once)."""
    with translated_errors(queue=queue):
        get_client().change_message_visibility(
            QueueUrl=url or queue_url(queue), ReceiptHandle=receipt_handle, VisibilityTimeout=int(seconds)
        )


def change_visibility_batch(*, url: str, receipt_handles: list[str], seconds: int) -> set[str]:
    """Extend (or end) the visibility of up to ten received messages in one call.

    Returns the receipt handles SQS refused (a handle that went stale because
    the message was deleted or redelivered); the others succeeded.
    """
    entries = [
        {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": int(seconds)}
        for index, handle in enumerate(receipt_handles)
    ]
    with translated_errors(queue=url.rsplit("/", 1)[-1]):
        response = get_client().change_message_visibility_batch(QueueUrl=url, Entries=entries)
    return {receipt_handles[int(failed["Id"])] for failed in response.get("Failed", [])}


def delete_message_batch(*, url: str, receipt_handles: list[str]) -> set[str]:
    """Delete up to ten received messages in one call; returns the handles SQS refused."""
    entries = [{"Id": str(index), "ReceiptHandle": handle} for index, handle in enumerate(receipt_handles)]
    with translated_errors(queue=url.rsplit("/", 1)[-1]):
        response = get_client().delete_message_batch(QueueUrl=url, Entries=entries)
    return {receipt_handles[int(failed["Id"])] for failed in response.get("Failed", [])}


def worker_queue_urls() -> dict[str, str]:
    """Logical name -> URL of every queue a worker may consume: the four, and Celery's own.

    Handed to kombu as its `predefined_queues`, so that workers resolve only
    Wipsie's queues (GetQueueUrl) and never need the account-wide ListQueues.
    """
    urls = {name: queue_url(name) for name in LOGICAL_QUEUES}
    celery = celery_queue_spec()
    urls[celery.logical_name] = _cached_url(celery.logical_name, celery.physical_name)
    return urls


def queue_depths(logical_name: str, *, dead_letters: bool = False) -> dict[str, int]:
    """Approximate visible, in-flight and delayed message counts of a queue (or its DLQ)."""
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    with translated_errors(queue=logical_name):
        url = dlq_url(logical_name) if dead_letters else queue_url(logical_name)
        attributes = get_client().get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return {
        "visible": int(attributes.get("ApproximateNumberOfMessages", 0)),
        "in_flight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        "delayed": int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
    }


# --- Provisioning -----------------------------------------------------------------


@dataclass(frozen=True)
class ProvisionedQueue:
    logical_name: str
    url: str
    dlq_url: str


def ensure_queue(spec: QueueSpec) -> ProvisionedQueue:
    """Create a queue and its DLQ with a redrive policy. Idempotent.

    CreateQueue returns the existing queue when the attributes match; when they
    do not (an older redrive policy), the attributes are brought up to date.
    """
    client = get_client()
    with translated_errors(queue=spec.logical_name):
        dlq = client.create_queue(QueueName=spec.dlq_name, Attributes={"MessageRetentionPeriod": "1209600"})[
            "QueueUrl"
        ]
        dlq_arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        attributes = {
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(settings.SQS_MAX_RECEIVE_COUNT)}
            ),
            "VisibilityTimeout": str(settings.CELERY_VISIBILITY_TIMEOUT),
        }
        try:
            url = client.create_queue(QueueName=spec.physical_name, Attributes=attributes)["QueueUrl"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("QueueAlreadyExists", "QueueNameExists"):
                raise
            url = client.get_queue_url(QueueName=spec.physical_name)["QueueUrl"]
            client.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    _queue_urls[spec.logical_name] = url
    _queue_urls[spec.logical_name + DLQ_SUFFIX] = dlq
    return ProvisionedQueue(spec.logical_name, url, dlq)


def ensure_all_queues() -> list[ProvisionedQueue]:
    """The four Wipsie queues and Celery's task queue, each with its DLQ."""
    return [ensure_queue(spec) for spec in [*all_queue_specs(), celery_queue_spec()]]


def ping() -> None:
    """Raise a WipsieError unless SQS answers (used by the health check)."""
    queue_depths("default")


# --- SNS (SMS and push notifications) -----------------------------------------------


def sns_publish(
    *,
    message: str,
    phone_number: str | None = None,
    target_arn: str | None = None,
    subject: str | None = None,
) -> str:
    """Publish an SMS (to a phone number) or a push (to a platform endpoint ARN).

    Returns SNS's MessageId. Errors come out as WipsieErrors like SQS's:
    throttling and unreachable endpoints are temporary, anything else is not.
    """
    params = {"Message": message}
    if phone_number:
        params["PhoneNumber"] = phone_number
    if target_arn:
        params["TargetArn"] = target_arn
    if subject:
        params["Subject"] = subject
    with translated_errors(service="sns"):
        return get_client("sns").publish(**params)["MessageId"]
