"""GET /sqs/receive/{queue} and DELETE /sqs/message/{queue}?receipt_handle=..."""

import json
from urllib.parse import urlencode

import pytest

from sqs_app.models import EventKind, Message, MessageStatus
from tests.helpers import assert_error_envelope, boto_queue_url, message_count, notification, send

pytestmark = pytest.mark.django_db

RECEIVE_KEYS = {"queue", "message_count", "messages"}
MESSAGE_KEYS = {"message_id", "body", "attributes", "receipt_handle"}


def receive(client, queue="default", **params):
    query = f"?{urlencode(params)}" if params else ""
    return client.get(f"/sqs/receive/{queue}{query}")


def delete(client, receipt_handle, queue="default"):
    return client.delete(f"/sqs/message/{queue}?{urlencode({'receipt_handle': receipt_handle})}")


# --- Receive -----------------------------------------------------------------------------


def test_it_receives_nothing_from_an_empty_queue(api_client, sqs):
    response = receive(api_client)

    assert response.status_code == 200
    assert response.json() == {"queue": "default", "message_count": 0, "messages": []}


def test_it_receives_a_sent_message_in_the_spec_shape(api_client, sqs):
    sent = send(
        api_client,
        {"task_type": "user_action", "message": "Process user data"},
        attributes={"priority": "high", "retries": 2},
    ).json()

    response = receive(api_client)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == RECEIVE_KEYS
    assert (body["queue"], body["message_count"]) == ("default", 1)
    [message] = body["messages"]
    assert set(message) == MESSAGE_KEYS
    assert message["message_id"] == sent["message_id"]
    assert message["body"]["task_type"] == "user_action"
    assert message["body"]["message"] == "Process user data"
    assert message["body"]["timestamp"] == sent["timestamp"]
    assert message["attributes"] == {
        "priority": {"StringValue": "high", "DataType": "String"},
        "retries": {"StringValue": "2", "DataType": "Number"},
    }
    assert message["receipt_handle"]


def test_it_receives_up_to_max_messages(api_client, sqs):
    for i in range(4):
        send(api_client, {"message": str(i)})

    body = receive(api_client, max_messages=3).json()

    assert 1 <= body["message_count"] <= 3
    assert body["message_count"] == len(body["messages"])


def test_it_receives_one_message_by_default(api_client, sqs):
    for i in range(3):
        send(api_client, {"message": str(i)})

    assert receive(api_client).json()["message_count"] == 1


def test_it_hides_a_received_message_for_the_visibility_timeout(api_client, boto_sqs):
    send(api_client, {"message": "hi"})

    receive(api_client, visibility_timeout=60)

    assert receive(api_client).json()["message_count"] == 0
    assert message_count(boto_sqs) == 1


def test_it_records_the_receive_in_the_history(api_client, sqs):
    sent = send(api_client, notification(), queue="notifications").json()

    message = receive(api_client, "notifications").json()["messages"][0]

    record = Message.objects.get(sqs_message_id=sent["message_id"])
    assert record.status == MessageStatus.RECEIVED
    assert record.receipt_handle == message["receipt_handle"]
    assert record.receive_count == 1
    assert [e.kind for e in record.events.all()] == [EventKind.SENT, EventKind.RECEIVED]


def test_it_receives_a_foreign_producers_plain_text_message(api_client, boto_sqs):
    boto_sqs.send_message(
        QueueUrl=boto_queue_url(boto_sqs),
        MessageBody="not json at all",
        MessageAttributes={"origin": {"DataType": "String", "StringValue": "legacy"}},
    )

    body = receive(api_client).json()

    [message] = body["messages"]
    assert message["body"] == "not json at all"
    assert message["attributes"] == {"origin": {"StringValue": "legacy", "DataType": "String"}}
    record = Message.objects.get(sqs_message_id=message["message_id"])
    assert record.body == "not json at all"
    assert record.status == MessageStatus.RECEIVED
    assert (record.standard_id, record.task_type, record.source, record.sent_by) == (None, "", "", None)
    assert record.sent_at is not None
    assert [e.kind for e in record.events.all()] == [EventKind.RECEIVED]


def test_it_receives_a_foreign_producers_json_message(api_client, boto_sqs):
    foreign = {"id": "5a4c3c4e-6b8a-4d0e-9a1b-0c2d3e4f5a6b", "task_type": "report", "source": "lambda"}
    boto_sqs.send_message(QueueUrl=boto_queue_url(boto_sqs), MessageBody=json.dumps(foreign))

    [message] = receive(api_client).json()["messages"]

    assert message["body"] == foreign
    assert message["attributes"] == {}
    record = Message.objects.get(sqs_message_id=message["message_id"])
    assert (str(record.standard_id), record.task_type, record.source) == (foreign["id"], "report", "lambda")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"max_messages": 0}, "max_messages"),
        ({"max_messages": 11}, "max_messages"),
        ({"max_messages": "abc"}, "max_messages"),
        ({"wait_time_seconds": 21}, "wait_time_seconds"),
        ({"wait_time_seconds": -1}, "wait_time_seconds"),
        ({"visibility_timeout": -1}, "visibility_timeout"),
        ({"visibility_timeout": 43201}, "visibility_timeout"),
    ],
)
def test_it_rejects_an_out_of_range_parameter_instead_of_clamping_it(
    api_client, sqs_untouched, params, field
):
    error = assert_error_envelope(receive(api_client, **params), 400, "INVALID_PARAMETER")

    assert set(error["details"]) == {"fields"}
    assert list(error["details"]["fields"]) == [field]


def test_it_leaves_the_message_in_the_queue_when_a_parameter_is_invalid(api_client, boto_sqs):
    send(api_client, {"message": "hi"})

    assert_error_envelope(receive(api_client, max_messages=11), 400, "INVALID_PARAMETER")
    assert receive(api_client).json()["message_count"] == 1


def test_it_rejects_receiving_from_an_unknown_queue(api_client, sqs_untouched):
    error = assert_error_envelope(receive(api_client, "nope"), 404, "QUEUE_NOT_FOUND")
    assert error["details"]["queue_name"] == "nope"


def test_receiving_needs_authentication(anon_client, sqs_untouched):
    assert_error_envelope(receive(anon_client), 401, "NOT_AUTHENTICATED")


# --- Delete ------------------------------------------------------------------------------


def test_it_deletes_a_received_message_from_sqs(api_client, boto_sqs):
    send(api_client, {"message": "hi"})
    [message] = receive(api_client).json()["messages"]

    response = delete(api_client, message["receipt_handle"])

    assert response.status_code == 200
    assert response.json() == {"status": "deleted", "queue": "default"}
    assert message_count(boto_sqs) == 0
    record = Message.objects.get(sqs_message_id=message["message_id"])
    assert record.status == MessageStatus.DELETED
    assert [(e.kind, e.actor) for e in record.events.all()] == [
        (EventKind.SENT, "alice"),
        (EventKind.RECEIVED, "alice"),
        (EventKind.DELETED, "alice"),
    ]


def test_it_deletes_a_message_received_by_someone_else(api_client, boto_sqs):
    boto_sqs.send_message(QueueUrl=boto_queue_url(boto_sqs), MessageBody="x")
    handle = boto_sqs.receive_message(QueueUrl=boto_queue_url(boto_sqs))["Messages"][0]["ReceiptHandle"]

    response = delete(api_client, handle)

    assert response.json() == {"status": "deleted", "queue": "default"}
    assert message_count(boto_sqs) == 0
    assert Message.objects.count() == 0


def test_it_rejects_an_invalid_receipt_handle(api_client, boto_sqs):
    send(api_client, {"message": "hi"})

    error = assert_error_envelope(delete(api_client, "not-a-receipt-handle"), 400, "INVALID_RECEIPT_HANDLE")

    assert error["details"]["queue"] == "default"
    assert message_count(boto_sqs) == 1


def test_it_requires_a_receipt_handle(api_client, sqs_untouched):
    error = assert_error_envelope(api_client.delete("/sqs/message/default"), 400, "INVALID_PARAMETER")
    assert list(error["details"]["fields"]) == ["receipt_handle"]


def test_it_rejects_deleting_from_an_unknown_queue(api_client, sqs_untouched):
    assert_error_envelope(delete(api_client, "handle", queue="nope"), 404, "QUEUE_NOT_FOUND")


def test_deleting_needs_authentication(anon_client, sqs_untouched):
    assert_error_envelope(delete(anon_client, "handle"), 401, "NOT_AUTHENTICATED")
