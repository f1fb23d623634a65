"""End to end: each message runs straight off its own queue, from receipt to deletion.

A real `celery -A wipsie_site worker` (and `celery beat`) on the moto server:
no hand-off queue, retries that stay on the message's queue, a worker per
family, recurring polls through django-celery-beat.
"""

import json
import time

import pytest
from django_celery_results.models import TaskResult

from sqs_app.models import Message, MessageStatus
from tasks_app.models import PollResult, PollSchedule

from .conftest import wait_until
from .test_worker import finished, send, webhook

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def depth(boto_sqs, physical_name: str) -> dict[str, int]:
    url = boto_sqs.get_queue_url(QueueName=physical_name)["QueueUrl"]
    attributes = boto_sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return {
        "visible": int(attributes["ApproximateNumberOfMessages"]),
        "in_flight": int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    }


def status_of(message_id: str) -> str | None:
    row = Message.objects.filter(sqs_message_id=message_id).first()
    return row.status if row else None


def test_the_raw_message_is_the_task_and_is_deleted_only_after_its_outcome(
    api_client, start_worker, peer, boto_sqs
):
    peer.routes["/slow"] = (200, b'{"ok": true}', 3.0)
    start_worker()
    message_id = send(api_client, "notifications", webhook(peer, path="/slow"))

    # While the webhook call runs, the message is held (in flight) on its own queue.
    wait_until(lambda: status_of(message_id) == MessageStatus.PROCESSING)
    assert depth(boto_sqs, "wipsie-notifications") == {"visible": 0, "in_flight": 1}

    message = wait_until(lambda: finished(message_id))
    assert message.status == MessageStatus.SUCCEEDED
    wait_until(lambda: depth(boto_sqs, "wipsie-notifications") == {"visible": 0, "in_flight": 0})
    # The Celery task *is* the SQS message: its id is SQS's MessageId, and nothing
    # was re-published to Wipsie's own task queue.
    result = TaskResult.objects.get(task_id=message_id)
    assert (result.task_name, result.status) == ("notification", "SUCCESS")
    assert message.celery_task_id == message_id
    assert "raw_body" not in (result.task_kwargs or "")
    assert depth(boto_sqs, "wipsie-celery") == {"visible": 0, "in_flight": 0}


def test_a_retry_comes_back_on_its_own_queue_after_its_backoff(api_client, start_worker, peer, boto_sqs):
    peer.routes["/flaky"] = [(503, b'{"error": "busy"}', 0.0), (200, b'{"ok": true}', 0.0)]
    worker = start_worker(TASK_RETRY_BASE_SECONDS="4")
    message_id = send(api_client, "notifications", webhook(peer, path="/flaky"))

    retrying = wait_until(
        lambda: Message.objects.filter(sqs_message_id=message_id, status="retrying").first()
    )
    # Waiting out its backoff on its own queue, where operators and autoscalers see it.
    assert retrying.next_attempt_at is not None
    assert "503" in retrying.last_error
    assert depth(boto_sqs, "wipsie-notifications")["in_flight"] == 1
    assert depth(boto_sqs, "wipsie-celery") == {"visible": 0, "in_flight": 0}
    assert len(peer.requests) == 1

    message = wait_until(lambda: finished(message_id))
    assert message.status == MessageStatus.SUCCEEDED, worker.log()
    assert (message.attempts, message.receive_count) == (2, 2)
    gap = peer.requests[1]["at"] - peer.requests[0]["at"]
    assert gap >= 3.5  # the backoff was honoured (4 s), not a fixed redelivery
    assert message.next_attempt_at is None
    assert list(message.events.values_list("kind", flat=True)) == [
        "sent",
        "received",
        "processing",
        "retrying",
        "received",
        "processing",
        "succeeded",
    ]


def test_a_family_worker_leaves_the_other_families_messages_alone(api_client, start_worker, peer, boto_sqs):
    start_worker("-Q", "notifications")
    processing_id = send(
        api_client,
        "task_processing",
        {
            "task_type": "processing",
            "message": "not for this worker",
            "data": {"operation": "analysis", "input_data": [{"v": 1}], "output_format": "json"},
        },
    )
    notification_id = send(api_client, "notifications", webhook(peer))

    assert wait_until(lambda: finished(notification_id)).status == MessageStatus.SUCCEEDED
    time.sleep(2)  # the processing message would have been taken by now, were it consumed
    assert status_of(processing_id) == MessageStatus.SENT
    assert depth(boto_sqs, "wipsie-task-processing") == {"visible": 1, "in_flight": 0}


def test_a_recurring_poll_runs_through_celery_beat_and_stops_when_stopped(
    api_client, start_worker, start_beat, peer
):
    peer.routes["/feed"] = (200, json.dumps([{"n": 1}]).encode(), 0.0)
    start_worker()
    start, workdir = start_beat
    beat, beat_log = start()
    message_id = send(
        api_client,
        "data_polling",
        {
            "task_type": "data_polling",
            "message": "Poll the feed every 2 s",
            "data": {"source_url": f"{peer.url}/feed", "poll_interval": 2},
        },
    )
    assert wait_until(lambda: finished(message_id)).status == MessageStatus.SUCCEEDED
    schedule = PollSchedule.objects.get()
    assert schedule.periodic_task.interval.every == 2
    assert schedule.periodic_task.enabled

    # Beat picks the new periodic task up and sends data_polling messages (source "scheduler").
    wait_until(lambda: PollResult.objects.filter(schedule=schedule).count() >= 3, timeout=90)
    scheduled = Message.objects.filter(source="scheduler", queue="data_polling")
    assert scheduled.count() >= 2
    assert beat.poll() is None, beat_log.read_text()

    response = api_client.post(f"/sqs/polls/{schedule.pk}/stop")
    assert response.status_code == 200 and response.json()["active"] is False
    time.sleep(8)  # beat notices the change within its 5 s loop; a poll already sent may still run
    settled = PollResult.objects.filter(schedule=schedule).count()
    time.sleep(6)
    assert PollResult.objects.filter(schedule=schedule).count() == settled
    # No schedule file: beat can run on a read-only filesystem.
    assert list(workdir.iterdir()) == []
