"""POST /sqs/send: one StandardMessage, really sent to the moto server."""

import json
import uuid
from datetime import datetime

import pytest

from sqs_app.models import EventKind, Message, MessageStatus
from tests.helpers import (
    assert_error_envelope,
    assert_uuid4,
    boto_queue_url,
    data_polling,
    drain,
    make_sqs_unreachable,
    notification,
    processing,
    send,
)

pytestmark = pytest.mark.django_db

SEND_RESPONSE_KEYS = {"message_id", "queue", "status", "timestamp"}


def only_message(boto_sqs, queue="default") -> dict:
    messages = drain(boto_sqs, queue)
    assert len(messages) == 1
    return messages[0]


def without_data_key(message: dict, key: str) -> dict:
    del message["data"][key]
    return message


def fields_of(error) -> dict:
    assert set(error["details"]) == {"fields"}
    return error["details"]["fields"]


# --- Success -------------------------------------------------------------------------


def test_it_sends_the_message_to_sqs_and_answers_in_the_spec_shape(api_client, boto_sqs):
    message = {
        "task_type": "user_action",
        "message": "Process user data",
        "priority": "high",
        "data": {"user_id": "12345", "action": "profile_update"},
    }

    response = send(api_client, message)

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == SEND_RESPONSE_KEYS
    assert body["queue"] == "default"
    assert body["status"] == "sent"
    datetime.fromisoformat(body["timestamp"])
    in_sqs = only_message(boto_sqs)
    assert in_sqs["MessageId"] == body["message_id"]
    sent = json.loads(in_sqs["Body"])
    assert set(sent) == {
        "id",
        "timestamp",
        "source",
        "queue",
        "task_type",
        "message",
        "data",
        "priority",
        "correlation_id",
    }
    assert_uuid4(sent["id"])
    assert sent["timestamp"] == body["timestamp"]
    assert datetime.fromisoformat(sent["timestamp"]).tzinfo is not None
    assert sent["source"] == "api"
    assert sent["queue"] == "default"
    assert sent["task_type"] == "user_action"
    assert sent["message"] == "Process user data"
    assert sent["priority"] == "high"
    assert sent["data"] == {"user_id": "12345", "action": "profile_update"}


def test_it_generates_a_correlation_id_when_none_is_given(api_client, boto_sqs):
    send(api_client, {"task_type": "user_action", "message": "hi"})

    uuid.UUID(json.loads(only_message(boto_sqs)["Body"])["correlation_id"])


def test_it_keeps_the_callers_correlation_id_and_id(api_client, boto_sqs):
    message_id = str(uuid.uuid4())
    send(api_client, {"id": message_id, "message": "hi", "correlation_id": "order-42"})

    sent = json.loads(only_message(boto_sqs)["Body"])
    assert sent["correlation_id"] == "order-42"
    assert sent["id"] == message_id


def test_it_keeps_keys_the_schema_does_not_know(api_client, boto_sqs):
    send(api_client, {"message": "hi", "tenant": "acme", "tags": ["a", "b"]})

    sent = json.loads(only_message(boto_sqs)["Body"])
    assert sent["tenant"] == "acme"
    assert sent["tags"] == ["a", "b"]


def test_it_overrides_source_queue_and_timestamp_given_by_the_caller(api_client, boto_sqs):
    send(api_client, {"message": "hi", "source": "lambda", "queue": "elsewhere", "timestamp": "1999"})

    sent = json.loads(only_message(boto_sqs)["Body"])
    assert (sent["source"], sent["queue"]) == ("api", "default")
    assert sent["timestamp"] != "1999"


def test_it_turns_attributes_into_sqs_string_and_number_attributes(api_client, boto_sqs):
    response = send(
        api_client,
        {"message": "hi"},
        attributes={"priority": "high", "source": "web_app", "retries": 3, "ratio": 0.5, "urgent": True},
    )

    assert response.status_code == 200, response.content
    assert only_message(boto_sqs)["MessageAttributes"] == {
        "priority": {"StringValue": "high", "DataType": "String"},
        "source": {"StringValue": "web_app", "DataType": "String"},
        "retries": {"StringValue": "3", "DataType": "Number"},
        "ratio": {"StringValue": "0.5", "DataType": "Number"},
        "urgent": {"StringValue": "true", "DataType": "String"},
    }


@pytest.mark.parametrize(
    ("queue", "message"),
    [
        ("notifications", notification()),
        ("data_polling", data_polling()),
        ("task_processing", processing()),
    ],
    ids=["notification", "data_polling", "processing"],
)
def test_it_sends_each_task_family_to_its_queue(api_client, boto_sqs, queue, message):
    response = send(api_client, message, queue=queue)

    assert response.status_code == 200, response.content
    assert response.json()["queue"] == queue
    sent = json.loads(only_message(boto_sqs, queue)["Body"])
    assert sent["task_type"] == message["task_type"]
    assert sent["data"] == message["data"]
    assert drain(boto_sqs, "default") == []


def test_it_fills_the_processing_defaults(api_client, boto_sqs):
    send(
        api_client,
        {"task_type": "processing", "data": {"operation": "analysis", "input_data": [1, 2]}},
        queue="task_processing",
    )

    data = json.loads(only_message(boto_sqs, "task_processing")["Body"])["data"]
    assert data == {
        "operation": "analysis",
        "input_data": [1, 2],
        "output_format": "json",
        "processing_options": {},
    }


def test_it_records_the_message_as_sent(api_client, boto_sqs, user):
    body = send(api_client, notification(), queue="notifications").json()

    record = Message.objects.get()
    assert record.sqs_message_id == body["message_id"]
    assert record.status == MessageStatus.SENT
    assert record.queue == "notifications"
    assert record.task_type == "notification"
    assert record.priority == "high"
    assert record.source == "api"
    assert record.sent_by == user
    assert record.sent_at is not None
    assert record.body == json.loads(only_message(boto_sqs, "notifications")["Body"])
    assert [(e.kind, e.actor) for e in record.events.all()] == [(EventKind.SENT, "alice")]


def test_it_does_not_send_the_same_message_id_twice(api_client, boto_sqs):
    message = {"id": str(uuid.uuid4()), "message": "once only"}

    first = send(api_client, message).json()
    second = send(api_client, message).json()

    assert second["message_id"] == first["message_id"]
    assert len(drain(boto_sqs)) == 1
    assert Message.objects.count() == 1


# --- Refusals --------------------------------------------------------------------------


def test_it_rejects_an_unknown_queue(api_client, boto_sqs):
    response = send(api_client, {"message": "hi"}, queue="invalid-queue")

    error = assert_error_envelope(response, 404, "QUEUE_NOT_FOUND")
    assert error["details"] == {
        "queue_name": "invalid-queue",
        "available_queues": ["default", "data_polling", "task_processing", "notifications"],
    }
    assert Message.objects.count() == 0


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (without_data_key(notification(), "recipient"), "message.data.recipient"),
        (without_data_key(notification(), "body"), "message.data.body"),
        (without_data_key(data_polling(), "source_url"), "message.data.source_url"),
        (without_data_key(processing(), "input_data"), "message.data.input_data"),
        (notification(recipient="not-an-email"), "message.data.recipient"),
        (notification(notification_type="pigeon"), "message.data.notification_type"),
        (notification(notification_type="sms", recipient="12345"), "message.data.recipient"),
        (notification(notification_type="push", recipient="device-1"), "message.data.recipient"),
        (notification(notification_type="webhook", recipient="not a url"), "message.data.recipient"),
        (
            notification(notification_type="webhook", recipient="ftp://example.com/x"),
            "message.data.recipient",
        ),
        (notification(template_id="no spaces!"), "message.data.template_id"),
        ({"task_type": "notification", "message": "no data"}, "message.data"),
        (data_polling(source_url="ftp://example.com/feed"), "message.data.source_url"),
        (data_polling(poll_interval=0), "message.data.poll_interval"),
        (data_polling(last_poll_time="yesterday"), "message.data.last_poll_time"),
        (processing(operation="deletion"), "message.data.operation"),
        (processing(output_format="xml"), "message.data.output_format"),
        (processing(processing_options=[1]), "message.data.processing_options"),
        ({"message": "hi", "priority": "urgent"}, "message.priority"),
        ({"message": "hi", "id": "not-a-uuid"}, "message.id"),
        ({"message": "hi", "retry_count": -1}, "message.retry_count"),
        ({"message": "hi", "data": "not an object"}, "message.data"),
    ],
)
def test_it_validates_the_message_schemas_naming_the_field(api_client, sqs_untouched, message, field):
    response = send(api_client, message)

    error = assert_error_envelope(response, 422, "VALIDATION_ERROR")
    assert field in fields_of(error), fields_of(error)
    assert Message.objects.count() == 0


def test_it_rejects_a_message_that_is_not_an_object(api_client, boto_sqs):
    response = api_client.post("/sqs/send", {"queue_name": "default", "message": "hello"}, format="json")

    error = assert_error_envelope(response, 422, "VALIDATION_ERROR")
    assert list(fields_of(error)) == ["message.non_field_errors"]
    assert drain(boto_sqs) == []


@pytest.mark.parametrize("message", [["a", "list"], 42, None, True])
def test_it_rejects_other_messages_that_are_not_objects(api_client, sqs_untouched, message):
    response = api_client.post("/sqs/send", {"queue_name": "default", "message": message}, format="json")

    error = assert_error_envelope(response, 422, "VALIDATION_ERROR")
    assert [path for path in fields_of(error) if path.startswith("message")], fields_of(error)


def test_it_requires_a_queue_name_and_a_message(api_client, sqs_untouched):
    response = api_client.post("/sqs/send", {}, format="json")

    error = assert_error_envelope(response, 422, "VALIDATION_ERROR")
    assert set(fields_of(error)) == {"queue_name", "message"}


def test_it_rejects_eleven_attributes(api_client, boto_sqs):
    attributes = {f"attr{i}": "x" for i in range(11)}

    response = send(api_client, {"message": "hi"}, attributes=attributes)

    error = assert_error_envelope(response, 422, "VALIDATION_ERROR")
    assert fields_of(error) == {"attributes": ["At most 10 attributes are allowed (SQS's limit)."]}
    assert drain(boto_sqs) == []


def test_it_accepts_ten_attributes(api_client, boto_sqs):
    response = send(api_client, {"message": "hi"}, attributes={f"attr{i}": "x" for i in range(10)})

    assert response.status_code == 200, response.content
    assert len(only_message(boto_sqs)["MessageAttributes"]) == 10


def test_it_rejects_an_attribute_whose_value_is_an_object(api_client, boto_sqs):
    response = send(api_client, {"message": "hi"}, attributes={"nested": {"a": 1}})

    error = assert_error_envelope(response, 422, "VALIDATION_ERROR")
    assert fields_of(error) == {
        "attributes.nested": ["Attribute values must be strings, numbers or booleans."]
    }
    assert drain(boto_sqs) == []


@pytest.mark.parametrize(
    ("attributes", "field"),
    [
        ({"listed": [1, 2]}, "attributes.listed"),
        ({"nothing": None}, "attributes.nothing"),
        ({"empty": ""}, "attributes.empty"),
        ({"AWS.trace": "x"}, "attributes.AWS.trace"),
        ({"has space": "x"}, "attributes.has space"),
        ("not an object", "attributes"),
    ],
)
def test_it_rejects_attributes_sqs_would_refuse(api_client, sqs_untouched, attributes, field):
    response = send(api_client, {"message": "hi"}, attributes=attributes)

    error = assert_error_envelope(response, 422, "VALIDATION_ERROR")
    assert field in fields_of(error), fields_of(error)


def test_it_refuses_a_message_over_256_kib_and_sends_nothing(api_client, boto_sqs):
    response = send(api_client, {"message": "x" * (256 * 1024)})

    error = assert_error_envelope(response, 413, "MESSAGE_TOO_LARGE")
    assert error["details"]["max_bytes"] == 256 * 1024
    assert error["details"]["size_bytes"] > 256 * 1024
    assert set(error["details"]) == {"size_bytes", "max_bytes"}
    assert drain(boto_sqs) == []
    assert Message.objects.count() == 0


def test_it_counts_the_attributes_toward_the_size_limit(api_client, boto_sqs):
    # The body alone fits; with its attributes it does not.
    response = send(api_client, {"message": "x" * (256 * 1024 - 300)}, attributes={"pad": "y" * 400})

    assert_error_envelope(response, 413, "MESSAGE_TOO_LARGE")
    assert drain(boto_sqs) == []


def test_it_reports_sqs_unreachable_as_503_and_keeps_no_history(api_client, sqs, settings):
    make_sqs_unreachable(settings)

    response = send(api_client, {"message": "hi"})

    error = assert_error_envelope(response, 503, "SQS_UNAVAILABLE")
    assert error["details"]["queue"] == "default"
    assert Message.objects.count() == 0


def test_it_reports_a_queue_missing_from_sqs_as_not_provisioned(api_client, boto_sqs):
    boto_sqs.delete_queue(QueueUrl=boto_queue_url(boto_sqs, "notifications"))

    response = send(api_client, notification(), queue="notifications")

    error = assert_error_envelope(response, 503, "QUEUE_NOT_PROVISIONED")
    assert error["details"]["queue"] == "notifications"
    assert Message.objects.count() == 0


def test_it_needs_authentication(anon_client, boto_sqs):
    response = send(anon_client, {"message": "hi"})

    assert_error_envelope(response, 401, "NOT_AUTHENTICATED")
    assert drain(boto_sqs) == []
