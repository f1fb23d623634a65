"""End to end: poison messages from other producers never crash or stall a worker."""

import json

import pytest

from sqs_app.models import Message, MessageStatus

from .conftest import wait_until
from .test_worker import finished

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

POISON = {
    "nul": (
        '{"task_type": "processing", "data": {"note": "\\u0000"}}',
        "data.note: Contains a character SQS does not accept (U+0000).",
    ),
    "infinite": (
        '{"task_type": "processing", "data": {"n": 1e400}}',
        "data.n: Numbers must be finite (this one is too large, or not a number).",
    ),
    # kombu's own parser recursed on this and stopped the consumer.
    "deep": ("[" * 5000 + "]" * 5000, "Nested deeper than 64 levels."),
    "not json": ("<xml>not json</xml>", None),
}


def test_poison_messages_are_failed_with_their_reason_and_the_worker_goes_on(start_worker, boto_sqs):
    worker = start_worker()
    url = boto_sqs.get_queue_url(QueueName="wipsie-task-processing")["QueueUrl"]
    sent = {
        name: boto_sqs.send_message(QueueUrl=url, MessageBody=raw)["MessageId"]
        for name, (raw, _) in POISON.items()
    }
    healthy = boto_sqs.send_message(
        QueueUrl=url,
        MessageBody=json.dumps(
            {
                "task_type": "processing",
                "data": {"operation": "analysis", "input_data": [{"v": 1}], "output_format": "json"},
            }
        ),
    )["MessageId"]

    assert wait_until(lambda: finished(healthy)).status == MessageStatus.SUCCEEDED, worker.log()
    for name, message_id in sent.items():
        raw, reason = POISON[name]
        message = wait_until(lambda message_id=message_id: finished(message_id))
        assert message.status == MessageStatus.FAILED, name
        assert message.body == raw, name
        if reason:
            assert message.last_error == f"the message body cannot be handled as JSON: {reason}"
    assert worker.process.poll() is None
    dlq = boto_sqs.get_queue_url(QueueName="wipsie-task-processing-dlq")["QueueUrl"]
    kept = boto_sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in kept) == sorted(raw for raw, _ in POISON.values())
    assert Message.objects.filter(status=MessageStatus.FAILED).count() == len(POISON)
