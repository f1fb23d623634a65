"""The operator's management commands, called as `manage.py` would, against the moto server."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from sqs_app.models import EventKind, Message, MessageStatus
from sqs_app.queues import queue_spec
from sqs_app.schemas import build_standard_message
from sqs_app.services import message_send
from tests.helpers import drain, make_sqs_unreachable, notification, worker_failed

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def dead_lettered(subject: str, queue: str = "notifications") -> Message:
    """A notification that a worker took, failed permanently and put on the DLQ."""
    body = build_standard_message(message=notification(subject=subject), queue=queue, source="api")
    return worker_failed(
        queue=queue,
        raw_body=json.dumps(body),
        sqs_message_id=f"sqs-{subject}",
        error="HTTP 404 from the webhook",
    )


def dlq_bodies(boto_sqs, queue: str = "notifications") -> list[dict]:
    url = boto_sqs.get_queue_url(QueueName=queue_spec(queue).dlq_name)["QueueUrl"]
    response = boto_sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60)
    return [json.loads(m["Body"]) for m in response.get("Messages", [])]


# --- sqs_status ------------------------------------------------------------------------------------


def test_status_prints_every_queue_with_its_counts_and_dead_letters(sqs):
    message_send(queue="default", message={"message": "one"})
    message_send(queue="default", message={"message": "two"})
    dead_lettered("failed-once")

    output = run("sqs_status")

    lines = output.splitlines()
    assert lines[0].split() == ["queue", "visible", "in", "flight", "delayed", "dead"]
    rows = {line.split()[0]: [int(n) for n in line.split()[1:]] for line in lines[1:]}
    assert rows == {
        "default": [2, 0, 0, 0],
        "data_polling": [0, 0, 0, 0],
        "task_processing": [0, 0, 0, 0],
        "notifications": [0, 0, 0, 1],
    }


def test_status_fails_with_a_command_error_when_sqs_is_unreachable(sqs, settings):
    make_sqs_unreachable(settings)

    with pytest.raises(CommandError, match="SQS_UNAVAILABLE"):
        run("sqs_status")


# --- sqs_redrive -----------------------------------------------------------------------------------


def test_redrive_replays_the_dead_letters_and_prints_them(boto_sqs):
    first, second = dead_lettered("first"), dead_lettered("second")

    output = run("sqs_redrive", "notifications")

    on_queue = drain(boto_sqs, "notifications")
    assert sorted(json.loads(m["Body"])["id"] for m in on_queue) == sorted(
        str(r.standard_id) for r in (first, second)
    )
    lines = output.splitlines()
    assert lines[-1] == "Replayed 2 message(s) onto notifications."
    printed_new_ids = {line.split(" -> ")[1] for line in lines[:-1]}
    assert printed_new_ids == {m["MessageId"] for m in on_queue}
    assert dlq_bodies(boto_sqs) == []
    record = Message.objects.get(pk=first.pk)
    assert record.status == MessageStatus.SENT
    assert record.events.last().kind == EventKind.REPLAYED


def test_redrive_with_an_id_replays_only_that_message(boto_sqs):
    chosen, other = dead_lettered("chosen"), dead_lettered("other")

    output = run("sqs_redrive", "notifications", "--id", str(chosen.standard_id))

    assert "Replayed 1 message(s) onto notifications." in output
    [on_queue] = drain(boto_sqs, "notifications")
    assert json.loads(on_queue["Body"])["id"] == str(chosen.standard_id)
    assert [b["id"] for b in dlq_bodies(boto_sqs)] == [str(other.standard_id)]
    assert Message.objects.get(pk=other.pk).status == MessageStatus.FAILED


def test_redrive_of_an_id_not_in_the_dlq_is_a_command_error(boto_sqs):
    dead_lettered("kept")

    with pytest.raises(CommandError, match="Only 0 of 1 requested message"):
        run("sqs_redrive", "notifications", "--id", "0b3a1f4e-0000-4000-8000-000000000000")

    assert len(dlq_bodies(boto_sqs)) == 1
    assert drain(boto_sqs, "notifications") == []


def test_redrive_of_an_unknown_queue_is_a_command_error(sqs_untouched):
    with pytest.raises(CommandError, match="invalid choice: 'nope'"):
        run("sqs_redrive", "nope")


def test_redrive_fails_with_a_command_error_when_sqs_is_unreachable(sqs, settings):
    make_sqs_unreachable(settings)

    with pytest.raises(CommandError, match="SQS_UNAVAILABLE"):
        run("sqs_redrive", "notifications")
