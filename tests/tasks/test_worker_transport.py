"""The worker's main process: raw SQS messages made into tasks, and the transport that holds them.

tasks_app.worker rewrites a plain message into a Celery task message;
tasks_app.sqs_transport keeps held messages' visibility (and leases)
extended, survives a failed receive, and leaves rejected messages to SQS.
The transport is exercised on the moto server through a real kombu connection.
"""

import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.utils import timezone
from kombu import Connection

from sqs_app.models import Message, MessageStatus
from sqs_app.services import parse_body
from tasks_app import heartbeat, worker
from tasks_app.sqs_transport import Channel
from tests.helpers import boto_queue_url, notification, worker_claim

pytestmark = pytest.mark.django_db


def sqs_message(body: str, message_id: str = "m-1", receive_count: str = "1") -> dict:
    return {
        "MessageId": message_id,
        "ReceiptHandle": f"handle-{message_id}",
        "Body": body,
        "Attributes": {"ApproximateReceiveCount": receive_count, "SentTimestamp": "1764547200000"},
        "MessageAttributes": {"priority": {"StringValue": "high", "DataType": "String"}},
    }


def raw_delivery(body: str, **kwargs) -> SimpleNamespace:
    """A kombu message as the SQS channel hands over a plain (non-Celery) message."""
    url = "http://sqs.local/123456789012/wipsie-notifications"
    channel = SimpleNamespace(queue_names_by_url={url: "notifications", "x": "celery"})
    return SimpleNamespace(
        headers={},
        body=body,
        content_type=None,
        content_encoding=None,
        _decoded_cache={"stale": True},
        delivery_info={"sqs_message": sqs_message(body, **kwargs), "sqs_queue": url},
        channel=channel,
    )


# --- A raw message becomes a task message -----------------------------------------------------------


def test_a_plain_message_becomes_a_protocol_2_task_of_its_family():
    body = json.dumps(
        {
            "task_type": "notification",
            "id": "6f1c1b9e-2a53-4c4b-9a53-1b0f3f8f6c11",
            "correlation_id": "order-7",
            "data": {"big": "x" * 1000},
        }
    )
    message = raw_delivery(body, message_id="sqs-42", receive_count="3")

    worker.as_task_message(message)

    assert message.headers["task"] == "notification"
    assert message.headers["id"] == "sqs-42"  # every delivery of one message is one task
    args, kwargs, embed = json.loads(message.body)
    assert args == []
    assert kwargs == {
        "queue": "notifications",
        "sqs_message_id": "sqs-42",
        "receive_count": 3,
        "sent_timestamp": 1764547200000,
        "raw_body": body,
        "attributes": {"priority": {"StringValue": "high", "DataType": "String"}},
        # What the task's log lines need, so that the pool need not parse the body for them.
        "correlation_id": "order-7",
        "standard_id": "6f1c1b9e-2a53-4c4b-9a53-1b0f3f8f6c11",
    }
    assert embed["chain"] is None
    assert (message.content_type, message.content_encoding, message._decoded_cache) == (
        "application/json",
        "utf-8",
        None,
    )
    # The task result keeps what names the message, not its body.
    assert "x" * 100 not in message.headers["kwargsrepr"]
    # What kombu needs to treat a reject as this queue's, not a re-publish.
    assert (message.delivery_info["exchange"], message.delivery_info["routing_key"]) == ("", "notifications")


@pytest.mark.parametrize(
    "body, task",
    [
        ('{"task_type": "data_polling"}', "data_polling"),
        ('{"task_type": "processing"}', "processing"),
        ('{"task_type": "notification"}', "notification"),
        ('{"task_type": "resize_image"}', "unroutable_message"),
        ('{"task_type": 7}', "unroutable_message"),
        ('{"message": "no type"}', "unroutable_message"),
        ('["a", "list"]', "unroutable_message"),
        ("plain text", "unroutable_message"),
        ("[" * 5000 + "]" * 5000, "unroutable_message"),  # too deep to parse: never a crash
    ],
)
def test_a_message_is_routed_by_its_task_type(body, task):
    assert worker.route(parse_body(body)) == task


def test_a_body_without_ids_gives_the_task_none_for_them():
    message = raw_delivery('{"task_type": "processing", "id": "not-a-uuid", "correlation_id": 7}')

    worker.as_task_message(message)

    _, kwargs, _ = json.loads(message.body)
    assert (kwargs["correlation_id"], kwargs["standard_id"]) == (None, None)


def test_a_message_on_an_unknown_url_is_named_by_the_urls_last_segment():
    message = raw_delivery('{"task_type": "processing"}')
    message.delivery_info["sqs_queue"] = "http://sqs.local/123456789012/someone-elses-queue"

    worker.as_task_message(message)

    assert message.delivery_info["routing_key"] == "someone-elses-queue"


# --- The transport -----------------------------------------------------------------------------------


@pytest.fixture
def channel(sqs):
    connection = Connection(
        settings.CELERY_BROKER_URL,
        transport=settings.CELERY_BROKER_TRANSPORT,
        transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
    )
    chan = connection.channel()
    yield chan
    connection.release()


def test_the_channel_knows_wipsies_queues_by_logical_name(channel, boto_sqs):
    assert isinstance(channel, Channel)
    urls = {name: queue["url"] for name, queue in channel.predefined_queues.items()}
    assert {url: name for name, url in urls.items()} == channel.queue_names_by_url
    assert urls == {
        "default": boto_queue_url(boto_sqs, "default"),
        "data_polling": boto_queue_url(boto_sqs, "data_polling"),
        "task_processing": boto_queue_url(boto_sqs, "task_processing"),
        "notifications": boto_queue_url(boto_sqs, "notifications"),
        "celery": boto_sqs.get_queue_url(QueueName="wipsie-celery")["QueueUrl"],
    }


@pytest.mark.parametrize("answer", [[], None, "timeout"])
def test_a_failed_receive_is_an_empty_receive_not_a_dead_consumer(channel, answer):
    # kombu hands [] to the callback after a timeout or a 5xx; the stock channel dies on it.
    assert channel._on_messages_ready("http://sqs.local/q", "notifications", answer) == 0


def test_held_messages_have_their_visibility_and_lease_extended(channel, boto_sqs, settings):
    url = boto_queue_url(boto_sqs, "notifications")
    body = json.dumps({"id": "0b7f3a58-3c55-4b8e-9d3c-6c8f5b0e2a11", **notification()})
    boto_sqs.send_message(QueueUrl=url, MessageBody=body)
    [received] = boto_sqs.receive_message(QueueUrl=url, VisibilityTimeout=2)["Messages"]
    worker_claim(queue="notifications", raw_body=body, sqs_message_id=received["MessageId"])
    Message.objects.update(lease_expires_at=timezone.now())
    # Held by this process, with its visibility about to end.
    channel._held[received["ReceiptHandle"]] = (url, received["MessageId"], time.monotonic())

    channel.extend_held_messages()

    time.sleep(2.5)  # past the 2 s it was received with
    assert boto_sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    lease = Message.objects.get().lease_expires_at
    assert lease > timezone.now() + timedelta(seconds=settings.CELERY_VISIBILITY_TIMEOUT - 5)
    assert Message.objects.get().status == MessageStatus.PROCESSING


def test_messages_with_time_left_are_not_extended(channel, boto_sqs):
    url = boto_queue_url(boto_sqs, "notifications")
    channel._held["handle-fresh"] = (url, "m-fresh", time.monotonic() + channel.visibility_timeout)

    channel.extend_held_messages()  # no SQS call for it (a stale handle would be refused)

    assert channel._held["handle-fresh"][1] == "m-fresh"


def test_a_rejected_message_is_left_on_its_queue(channel, boto_sqs):
    url = boto_queue_url(boto_sqs, "notifications")
    boto_sqs.send_message(QueueUrl=url, MessageBody='{"task_type": "notification"}')
    [received] = boto_sqs.receive_message(QueueUrl=url, VisibilityTimeout=1)["Messages"]
    delivery = SimpleNamespace(
        delivery_info={"sqs_message": received, "sqs_queue": url, "routing_key": "notifications"}
    )
    channel.qos._delivered[received["ReceiptHandle"]] = delivery
    channel._held[received["ReceiptHandle"]] = (url, received["MessageId"], time.monotonic() + 1)

    channel.basic_reject(received["ReceiptHandle"], requeue=False)

    assert received["ReceiptHandle"] not in channel._held
    time.sleep(1.5)
    [again] = boto_sqs.receive_message(QueueUrl=url)["Messages"]
    assert again["MessageId"] == received["MessageId"]  # not deleted, not re-published


def test_a_request_returned_to_the_queue_sets_the_messages_visibility(sqs, boto_sqs):
    url = boto_queue_url(boto_sqs, "notifications")
    boto_sqs.send_message(QueueUrl=url, MessageBody='{"task_type": "notification"}')
    [received] = boto_sqs.receive_message(QueueUrl=url, VisibilityTimeout=30)["Messages"]
    request = worker.MessageRequest.__new__(worker.MessageRequest)
    request._message = SimpleNamespace(
        delivery_info={"sqs_message": received, "sqs_queue": url, "routing_key": "notifications"}
    )
    request.id = received["MessageId"]

    request._set_visibility(0)  # e.g. a retry whose backoff is over

    [again] = boto_sqs.receive_message(QueueUrl=url)["Messages"]
    assert again["MessageId"] == received["MessageId"]


def test_return_to_queue_keeps_its_delay_across_processes():
    import pickle

    back = pickle.loads(pickle.dumps(worker.ReturnToQueue("retry 1 in 60 s", delay=60)))  # noqa: S301

    assert (back.delay, back.requeue, back.reason) == (60, True, "retry 1 in 60 s")


class FakeHub:
    """Records the timers a channel sets instead of running an event loop."""

    def __init__(self):
        self.later = []

    def call_later(self, delay, callback, *args):
        self.later.append((delay, callback))
        return SimpleNamespace(cancel=lambda: None)

    def call_repeatedly(self, delay, callback, *args):
        return SimpleNamespace(cancel=lambda: None)


def test_acknowledged_messages_are_deleted_together_in_one_batch(channel, boto_sqs):
    url = boto_queue_url(boto_sqs, "notifications")
    boto_sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": f'{{"n": {n}}}'} for n in range(3)]
    )
    received = boto_sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=1)["Messages"]
    assert len(received) == 3
    channel.hub = FakeHub()
    for message in received:
        channel.qos._delivered[message["ReceiptHandle"]] = SimpleNamespace(
            delivery_info={"sqs_message": message, "sqs_queue": url, "routing_key": "notifications"}
        )
        channel.basic_ack(message["ReceiptHandle"])

    # Acknowledged (the prefetch slots are free) but not deleted yet: one timer for the batch.
    assert len(channel.hub.later) == 1
    assert all(message["ReceiptHandle"] in channel.qos._dirty for message in received)
    [(delay, flush)] = channel.hub.later
    flush()

    time.sleep(1.5)  # past the visibility they were received with: deleted, not hidden
    assert boto_sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []


# --- The heartbeat and the watchdog ---------------------------------------------------------------


def test_every_poll_touches_the_heartbeat_file(channel, tmp_path, monkeypatch):
    beat = tmp_path / "heartbeat"
    monkeypatch.setenv("WIPSIE_HEARTBEAT_FILE", str(beat))
    channel._last_beat = 0.0

    channel._schedule_queue("notifications")  # not consuming it: the poll is only scheduled

    assert beat.exists()
    assert heartbeat.main(["--max-age", "60", "--file", str(beat)]) == 0


def test_the_probe_fails_when_the_heartbeat_is_old_or_missing(tmp_path, capsys):
    beat = tmp_path / "heartbeat"
    assert heartbeat.main(["--file", str(beat)]) == 1
    assert "has not polled yet" in capsys.readouterr().out

    beat.touch()
    old = time.time() - 120
    os.utime(beat, (old, old))

    assert heartbeat.main(["--max-age", "60", "--file", str(beat)]) == 1
    assert "stopped polling" in capsys.readouterr().out


def test_the_probe_runs_without_django(tmp_path):
    beat = tmp_path / "heartbeat"
    beat.touch()

    probe = subprocess.run(
        [sys.executable, "-m", "tasks_app.heartbeat", "--max-age", "60"],
        env={"PATH": "/usr/bin:/bin", "WIPSIE_HEARTBEAT_FILE": str(beat)},
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
    )

    assert probe.returncode == 0, probe.stdout + probe.stderr
