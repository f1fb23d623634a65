"""Small helpers shared by the API and service tests."""

import socket
import uuid
from datetime import datetime

from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from sqs_app import sqs_client
from sqs_app.permissions import Action
from sqs_app.queues import queue_spec

ERROR_KEYS = {"code", "message", "details", "timestamp", "request_id"}


def assert_error_envelope(response, status: int, code: str) -> dict:
    """The response is the one error envelope, with this status and code. Returns its `error`."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == ERROR_KEYS
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    assert datetime.fromisoformat(error["timestamp"]).tzinfo is not None
    assert error["request_id"] == response["X-Request-ID"]
    return error


# --- Users and what they may do ---------------------------------------------------------


def grant(user, *actions: Action):
    """Give `user` these Wipsie permissions directly; returns the user, its permission cache fresh.

    Directly rather than through the "Wipsie operators" group: the group is
    data from a migration, which a transactional test's flush removes, while
    permissions are created again after every flush.
    """
    from django.contrib.auth.models import Permission

    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="sqs_app", codename__in=[a.value for a in actions])
    )
    return type(user).objects.get(pk=user.pk)


def jwt_client(user) -> APIClient:
    """An API client carrying a real JWT for `user`."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def assert_uuid4(value: str) -> None:
    assert str(uuid.UUID(value, version=4)) == value


# --- Messages as callers send them -------------------------------------------------


def notification(**data) -> dict:
    return {
        "task_type": "notification",
        "message": "Tell Alice her export is ready",
        "priority": "high",
        "data": {
            "recipient": "alice@example.com",
            "notification_type": "email",
            "subject": "Your export",
            "body": "It is ready.",
            "metadata": {"export_id": 7},
        }
        | data,
    }


def data_polling(**data) -> dict:
    return {
        "task_type": "data_polling",
        "message": "Poll the price feed",
        "data": {"source_url": "https://example.com/prices.json", "poll_interval": 60} | data,
    }


def processing(**data) -> dict:
    return {
        "task_type": "processing",
        "message": "Sum the scores",
        "data": {
            "operation": "aggregation",
            "input_data": [{"pts": 1}, {"pts": 2}],
            "output_format": "json",
            "processing_options": {},
        }
        | data,
    }


def send(client, message, *, queue: str = "default", attributes: dict | None = None):
    payload = {"queue_name": queue, "message": message}
    if attributes is not None:
        payload["attributes"] = attributes
    return client.post("/sqs/send", payload, format="json")


# --- Looking into SQS with plain boto3 -------------------------------------------------


def boto_queue_url(boto_sqs, logical_name: str = "default") -> str:
    return boto_sqs.get_queue_url(QueueName=queue_spec(logical_name).physical_name)["QueueUrl"]


def drain(boto_sqs, logical_name: str = "default") -> list[dict]:
    """Every visible message on a queue, received with plain boto3 (and hidden for a minute)."""
    url = boto_queue_url(boto_sqs, logical_name)
    messages = []
    while True:
        batch = boto_sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            VisibilityTimeout=60,
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not batch:
            return messages
        messages += batch


def message_count(boto_sqs, logical_name: str = "default") -> int:
    """Messages on a queue, visible or in flight."""
    attributes = boto_sqs.get_queue_attributes(
        QueueUrl=boto_queue_url(boto_sqs, logical_name),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def closed_endpoint() -> str:
    """A loopback URL nobody listens on: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def make_sqs_unreachable(settings) -> None:
    """Point Wipsie's SQS client at a closed port (restored by the `settings` fixture)."""
    settings.AWS_ENDPOINT_URL_SQS = closed_endpoint()
    settings.SQS_CONNECT_TIMEOUT_SECONDS = 0.5
    settings.SQS_READ_TIMEOUT_SECONDS = 1
    sqs_client.reset()


# --- What a worker leaves behind -------------------------------------------------------


def worker_claim(*, queue: str, raw_body: str, sqs_message_id: str, receive_count: int = 1):
    """A worker's claim of one delivery, as tasks_app.tasks makes it."""
    from tasks_app import lifecycle

    delivery = lifecycle.Delivery(
        queue=queue, sqs_message_id=sqs_message_id, receive_count=receive_count, raw_body=raw_body
    )
    return lifecycle.message_claim(delivery=delivery, task_id=sqs_message_id)


def worker_failed(*, queue: str, raw_body: str, sqs_message_id: str, error: str):
    """A message a worker took and failed permanently: its row, with the copy on the DLQ."""
    from sqs_app.models import Message
    from tasks_app import lifecycle

    claim = worker_claim(queue=queue, raw_body=raw_body, sqs_message_id=sqs_message_id)
    lifecycle.message_failed(claim, error=error)
    return Message.objects.get(pk=claim.pk)


def recurring_poll(*, active: bool = True, paused: bool = False, **fields):
    """A recurring poll with its django-celery-beat periodic task, as a poll message leaves it.

    `active=False` gives a stopped poll, `paused=True` a paused one.
    """
    from tasks_app import poll_schedules
    from tasks_app.models import PollSchedule

    defaults = {"source_url": "https://example.com/feed.json", "interval_seconds": 60}
    schedule = PollSchedule.objects.create(**(defaults | fields))
    poll_schedules.poll_schedule_start(schedule=schedule)
    if not active:
        poll_schedules.poll_schedule_stop(schedule=schedule, via="command")
    elif paused:
        poll_schedules.poll_schedule_pause(schedule=schedule, via="command")
    return PollSchedule.objects.select_related("periodic_task").get(pk=schedule.pk)
