"""End to end: messages on the real queues, processed by a real worker process."""

import json
import uuid

import pytest

from sqs_app.models import Message, MessageStatus
from tasks_app.models import PollResult

from .conftest import json_body, signature_is_valid, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def finished(message_id: str) -> Message | None:
    """The history row once an outcome is recorded (looked up by SQS id or StandardMessage id)."""
    message = (
        Message.objects.filter(sqs_message_id=message_id).first()
        or Message.objects.filter(standard_id=message_id if _is_uuid(message_id) else None).first()
    )
    done = {MessageStatus.SUCCEEDED, MessageStatus.FAILED, MessageStatus.DEAD_LETTERED}
    return message if message and message.status in done else None


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def send(api_client, queue: str, message: dict) -> str:
    response = api_client.post("/sqs/send", {"queue_name": queue, "message": message}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()["message_id"]


def webhook(peer, path="/hook", **extra) -> dict:
    return {
        "task_type": "notification",
        "message": "Tell the hook",
        "data": {
            "recipient": f"{peer.url}{path}",
            "notification_type": "webhook",
            "subject": "Build finished",
            "body": "All green",
            "metadata": {"build": 42},
        },
        **extra,
    }


def test_a_webhook_sent_through_the_api_is_delivered_signed_and_recorded(api_client, start_worker, peer):
    worker = start_worker()
    message_id = send(api_client, "notifications", webhook(peer))

    message = wait_until(lambda: finished(message_id))

    assert message.status == MessageStatus.SUCCEEDED, worker.log()
    assert len(peer.requests) == 1
    delivered = peer.requests[0]
    assert signature_is_valid(delivered)
    assert json_body(delivered)["body"] == "All green"
    assert delivered["headers"]["X-Wipsie-Delivery"] == str(message.standard_id)
    detail = api_client.get(f"/sqs/messages/{message_id}").json()
    assert detail["status"] == "succeeded"
    assert detail["attempts"] == 1
    assert [e["kind"] for e in detail["events"]] == ["sent", "received", "processing", "succeeded"]
    assert detail["task_result"]["status"] == "SUCCESS"
    assert detail["task_result"]["result"]["status_code"] == 200


def test_an_email_notification_lands_in_the_outbox_rendered_from_its_template(api_client, start_worker):
    worker = start_worker()
    message_id = send(
        api_client,
        "notifications",
        {
            "task_type": "notification",
            "message": "Welcome mail",
            "data": {
                "recipient": "new.user@example.com",
                "notification_type": "email",
                "subject": "Welcome to Wipsie",
                "body": "Your account is ready.",
                "template_id": "welcome",
                "metadata": {"name": "Ada"},
            },
        },
    )

    assert wait_until(lambda: finished(message_id)).status == MessageStatus.SUCCEEDED, worker.log()
    emails = [path.read_text() for path in worker.outbox.iterdir()]
    assert len(emails) == 1
    assert "To: new.user@example.com" in emails[0]
    assert "Subject: Welcome to Wipsie" in emails[0]
    assert "Hello Ada," in emails[0]


def test_a_processing_message_stores_its_output_as_the_task_result(api_client, start_worker):
    start_worker()
    message_id = send(
        api_client,
        "task_processing",
        {
            "task_type": "processing",
            "message": "Points per team",
            "data": {
                "operation": "aggregation",
                "input_data": [
                    {"team": "red", "pts": 3},
                    {"team": "red", "pts": 5},
                    {"team": "blue", "pts": 1},
                ],
                "output_format": "json",
                "processing_options": {"group_by": ["team"], "metrics": {"pts": ["sum", "avg"]}},
            },
        },
    )

    wait_until(lambda: finished(message_id))
    result = api_client.get(f"/sqs/messages/{message_id}").json()["task_result"]
    assert result["result"]["result"] == [
        {"team": "blue", "pts_sum": 1, "pts_avg": 1.0},
        {"team": "red", "pts_sum": 8, "pts_avg": 4.0},
    ]


def test_a_data_poll_stores_the_filtered_records(api_client, start_worker, peer):
    peer.routes["/users"] = (
        200,
        json.dumps([{"name": "a", "status": "active"}, {"name": "b", "status": "gone"}]).encode(),
        0.0,
    )
    start_worker()
    message_id = send(
        api_client,
        "data_polling",
        {
            "task_type": "data_polling",
            "message": "Poll users",
            "data": {"source_url": f"{peer.url}/users", "filters": {"status": "active"}},
        },
    )

    message = wait_until(lambda: finished(message_id))
    assert message.status == MessageStatus.SUCCEEDED
    poll = PollResult.objects.get(message=message)
    assert (poll.status_code, poll.item_count, poll.payload) == (200, 1, [{"name": "a", "status": "active"}])


def test_a_failing_webhook_is_retried_then_dead_lettered(api_client, start_worker, peer, boto_sqs):
    peer.routes["/broken"] = (500, b'{"error": "down"}', 0.0)
    worker = start_worker()
    message_id = send(api_client, "notifications", webhook(peer, path="/broken"))

    message = wait_until(lambda: finished(message_id), timeout=90)

    assert message.status == MessageStatus.DEAD_LETTERED, worker.log()
    assert len(peer.requests) == 4  # the first try and three retries
    kinds = list(message.events.values_list("kind", flat=True))
    assert kinds.count("retrying") == 3
    # Every retry was the same SQS message coming back on its own queue.
    assert (message.attempts, message.receive_count) == (4, 4)
    assert message.sqs_message_id == message_id
    dlq = boto_sqs.get_queue_url(QueueName="wipsie-notifications-dlq")["QueueUrl"]
    dead = boto_sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert len(dead) == 1
    body = json.loads(dead[0]["Body"])
    assert body["id"] == str(message.standard_id)
    assert body["retry_count"] == 3
    assert "500" in body["last_error"]


def test_a_message_sent_twice_with_the_same_id_is_processed_once(start_worker, peer, boto_sqs):
    start_worker()
    queue = boto_sqs.get_queue_url(QueueName="wipsie-notifications")["QueueUrl"]
    standard_id = str(uuid.uuid4())
    body = json.dumps({"id": standard_id, **webhook(peer)})
    boto_sqs.send_message(QueueUrl=queue, MessageBody=body)
    boto_sqs.send_message(QueueUrl=queue, MessageBody=body)

    # Either copy may be the one that runs: the row is found by the StandardMessage id.
    message = wait_until(lambda: finished(standard_id))
    # The second copy waits out the first one's lease, then is seen as a duplicate and deleted.
    wait_until(lambda: message.events.filter(kind="received", detail__duplicate=True).exists(), timeout=90)

    assert message.status == MessageStatus.SUCCEEDED
    assert len(peer.requests) == 1
    assert Message.objects.count() == 1


def test_a_message_from_another_producer_is_processed_and_recorded(start_worker, boto_sqs):
    start_worker()
    queue = boto_sqs.get_queue_url(QueueName="wipsie-task-processing")["QueueUrl"]
    body = {
        "task_type": "processing",
        "data": {"operation": "analysis", "input_data": [{"v": 1}, {"v": 3}], "output_format": "json"},
    }
    message_id = boto_sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(body))["MessageId"]

    message = wait_until(lambda: finished(message_id))

    assert message.status == MessageStatus.SUCCEEDED
    assert message.standard_id is None
    assert message.task_type == "processing"


def test_a_message_without_a_known_task_type_is_failed_and_kept_in_the_dlq(start_worker, boto_sqs):
    start_worker()
    queue = boto_sqs.get_queue_url(QueueName="wipsie-task-processing")["QueueUrl"]
    # A body that looks like base64 ("hello"): kombu would decode it; Wipsie keeps it as sent.
    message_id = boto_sqs.send_message(QueueUrl=queue, MessageBody="aGVsbG8=")["MessageId"]

    message = wait_until(lambda: finished(message_id))

    assert message.status == MessageStatus.FAILED
    assert message.last_error == "the message has no task_type"
    assert message.body == "aGVsbG8="
    dlq = boto_sqs.get_queue_url(QueueName="wipsie-task-processing-dlq")["QueueUrl"]
    dead = boto_sqs.receive_message(QueueUrl=dlq, MessageAttributeNames=["All"])["Messages"]
    assert dead[0]["Body"] == "aGVsbG8="
    assert dead[0]["MessageAttributes"]["wipsie_last_error"]["StringValue"] == "the message has no task_type"


def test_a_body_with_a_properties_key_is_not_mistaken_for_a_kombu_envelope(start_worker, boto_sqs):
    start_worker()
    queue = boto_sqs.get_queue_url(QueueName="wipsie-task-processing")["QueueUrl"]
    body = {
        "task_type": "processing",
        "properties": {"owner": "someone"},
        "data": {"operation": "analysis", "input_data": [{"v": 2}], "output_format": "json"},
    }
    message_id = boto_sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(body))["MessageId"]

    message = wait_until(lambda: finished(message_id))

    assert message.status == MessageStatus.SUCCEEDED
    assert message.body["properties"] == {"owner": "someone"}


def test_a_worker_killed_mid_task_loses_nothing(api_client, start_worker, peer, boto_sqs):
    # Default settings: a 30 s visibility timeout that only a live worker extends.
    peer.routes["/slow"] = [(200, b'{"ok": true}', 5.0), (200, b'{"ok": true}', 0.0)]
    first = start_worker()
    message_id = send(api_client, "notifications", webhook(peer, path="/slow"))

    wait_until(lambda: len(peer.requests) == 1)  # the task is inside the webhook call
    first.kill()
    assert Message.objects.get(sqs_message_id=message_id).status == MessageStatus.PROCESSING

    start_worker()
    message = wait_until(lambda: finished(message_id), timeout=90)

    assert message.status == MessageStatus.SUCCEEDED
    assert message.attempts == 2
    assert len(peer.requests) == 2  # at least once: the receiver dedupes by X-Wipsie-Delivery
    assert {r["headers"]["X-Wipsie-Delivery"] for r in peer.requests} == {str(message.standard_id)}


def test_a_failure_that_cannot_reach_its_dlq_is_retried_until_it_can(start_worker, boto_sqs):
    from sqs_app import sqs_client

    dlq = boto_sqs.get_queue_url(QueueName="wipsie-task-processing-dlq")["QueueUrl"]
    boto_sqs.delete_queue(QueueUrl=dlq)
    worker = start_worker()
    queue = boto_sqs.get_queue_url(QueueName="wipsie-task-processing")["QueueUrl"]
    message_id = boto_sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"task_type": "nope"}))[
        "MessageId"
    ]

    # The task cannot record its failure without the DLQ: it is handed back, not acknowledged.
    wait_until(lambda: "Could not record message_failed" in worker.log())
    assert Message.objects.get(sqs_message_id=message_id).status == MessageStatus.PROCESSING
    sqs_client.reset()
    sqs_client.ensure_all_queues()

    message = wait_until(lambda: finished(message_id), timeout=60)
    assert message.status == MessageStatus.FAILED
    dead = boto_sqs.receive_message(QueueUrl=dlq)["Messages"]
    assert json.loads(dead[0]["Body"])["task_type"] == "nope"
