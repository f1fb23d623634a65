"""sqs_send, sqs_receive, sqs_delete, sqs_test_message: through the services, recorded and audited."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from sqs_app.models import AuditEntry, EventKind, Message, MessageStatus
from tests.helpers import drain, message_count, notification

pytestmark = pytest.mark.django_db


def test_send_from_an_argument_records_a_manual_message_and_audits_it(command, boto_sqs, staff):
    body = json.dumps(notification())

    result = command("sqs_send", "notifications", "--body", body, "--json", "--operator", "admin")

    assert result.code == 0
    sent = result.json
    assert sent["status"] == "sent" and sent["queue"] == "notifications"
    [on_queue] = drain(boto_sqs, "notifications")
    assert on_queue["MessageId"] == sent["message_id"]
    assert json.loads(on_queue["Body"])["source"] == "manual"
    record = Message.objects.get(sqs_message_id=sent["message_id"])
    assert (record.source, record.sent_by, record.status) == ("manual", staff, MessageStatus.SENT)
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.via, entry.actor, entry.user) == ("send", "command", "admin", staff)
    assert entry.message_ids == [sent["message_id"]]


def test_send_reads_a_file_or_standard_input(command, boto_sqs, tmp_path):
    path = tmp_path / "message.json"
    path.write_text('{"message": "from a file"}')

    from_file = command("sqs_send", "default", "--file", str(path), "--json")
    from_stdin = command("sqs_send", "default", stdin='{"message": "from stdin"}', json=True)

    assert (from_file.code, from_stdin.code) == (0, 0)
    bodies = sorted(json.loads(m["Body"])["message"] for m in drain(boto_sqs, "default"))
    assert bodies == ["from a file", "from stdin"]


def test_send_with_attributes_and_a_delay(command, boto_sqs):
    result = command(
        "sqs_send", "default", "--body", '{"message": "later"}', "--attr", "tenant=acme", "--attr", "n=3",
        "--delay", "60", "--json",
    )  # fmt: skip

    assert result.code == 0
    attributes = boto_sqs.get_queue_attributes(
        QueueUrl=boto_sqs.get_queue_url(QueueName="wipsie-default")["QueueUrl"],
        AttributeNames=["ApproximateNumberOfMessagesDelayed"],
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"
    record = Message.objects.get(sqs_message_id=result.json["message_id"])
    assert record.attributes == {
        "tenant": {"DataType": "String", "StringValue": "acme"},
        "n": {"DataType": "Number", "StringValue": "3"},
    }


def test_send_validates_like_the_api_and_exits_2_naming_the_field(command, sqs):
    body = json.dumps(notification(recipient="not-an-email"))

    result = command("sqs_send", "notifications", "--body", body)

    assert result.code == 2
    assert result.err == (
        "VALIDATION_ERROR: The message is invalid. message.data.recipient: Enter a valid email address."
    )
    assert not Message.objects.exists()


def test_send_without_a_body_on_a_terminal_is_bad_usage(command, sqs_untouched):
    class Terminal(StringIO):
        def isatty(self):
            return True

    with pytest.raises(CommandError) as raised:
        call_command("sqs_send", "default", stdin=Terminal(), stdout=StringIO(), stderr=StringIO())
    assert raised.value.returncode == 2
    assert str(raised.value) == "Give the message with --body, --file, or on standard input."


def test_a_bad_attribute_is_bad_usage(command, sqs_untouched):
    result = command("sqs_send", "default", "--body", "{}", "--attr", "novalue")

    assert result.code == 2
    assert result.err == "--attr takes KEY=VALUE, not 'novalue'"


def test_receive_records_the_receive_and_delete_removes_it(command, boto_sqs):
    sent = command("sqs_send", "default", "--body", '{"message": "one"}', "--json").json

    received = command("sqs_receive", "default", "--max", "10", "--delete", "--json", "--operator", "carol")

    assert received.code == 0
    [message] = received.json
    assert message["message_id"] == sent["message_id"]
    assert message["body"]["message"] == "one" and message["deleted"] is True
    assert message_count(boto_sqs, "default") == 0
    record = Message.objects.get(sqs_message_id=sent["message_id"])
    assert record.status == MessageStatus.DELETED
    assert [e.kind for e in record.events.all()] == [EventKind.SENT, EventKind.RECEIVED, EventKind.DELETED]
    actions = list(AuditEntry.objects.order_by("id").values_list("action", "actor", "count"))
    assert actions[1:] == [("receive", "carol", 1), ("delete", "carol", 1)]


def test_receive_prints_a_table(command, boto_sqs):
    command("sqs_send", "default", "--body", '{"message": "one"}')

    result = command("sqs_receive", "default")

    assert result.code == 0
    assert result.out.splitlines()[0].split() == ["message", "id", "body", "receipt", "handle", "deleted"]
    assert result.out.splitlines()[-1] == "1 message(s) received."


def test_delete_by_receipt_handle(command, boto_sqs):
    command("sqs_send", "default", "--body", '{"message": "one"}')
    [message] = command("sqs_receive", "default", "--json", "--visibility", "60").json

    result = command("sqs_delete", "default", message["receipt_handle"], "--json")

    assert result.code == 0
    assert result.json == [{"receipt_handle": message["receipt_handle"], "message_id": message["message_id"]}]
    assert message_count(boto_sqs, "default") == 0
    assert AuditEntry.objects.filter(action="delete", message_ids=[message["message_id"]]).exists()


def test_delete_with_a_bad_handle_fails_with_one_line(command, sqs):
    result = command("sqs_delete", "default", "not-a-handle")

    assert result.code == 1
    assert result.err.startswith("INVALID_RECEIPT_HANDLE:")


def test_test_message_goes_to_default_as_manual(command, boto_sqs):
    result = command("sqs_test_message", "--json")

    assert result.code == 0
    [on_queue] = drain(boto_sqs, "default")
    body = json.loads(on_queue["Body"])
    assert body["message"] == "Hello from Wipsie!" and body["source"] == "manual"
    assert AuditEntry.objects.get().detail == {"test": True}
