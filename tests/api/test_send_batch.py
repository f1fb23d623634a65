"""POST /sqs/send-batch: up to ten messages in one SendMessageBatch call."""

import json
import uuid
from unittest import mock

import pytest

from sqs_app import sqs_client
from sqs_app.models import Message, MessageStatus
from tests.helpers import assert_error_envelope, assert_uuid4, drain, notification

pytestmark = pytest.mark.django_db

BATCH_RESPONSE_KEYS = {"queue", "successful", "failed", "results"}
RESULT_KEYS = {"index", "status", "id", "message_id", "error"}


def send_batch(client, entries, *, queue="default"):
    return client.post("/sqs/send-batch", {"queue_name": queue, "messages": entries}, format="json")


def entries(count: int) -> list[dict]:
    return [{"message": {"message": f"number {i}", "data": {"n": i}}} for i in range(count)]


@pytest.fixture
def batch_calls():
    """Counts SendMessageBatch calls while letting them through to moto."""
    with mock.patch.object(sqs_client, "send_message_batch", wraps=sqs_client.send_message_batch) as spy:
        yield spy


def test_it_sends_ten_messages_in_one_sqs_call(api_client, boto_sqs, batch_calls):
    response = send_batch(api_client, entries(10))

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == BATCH_RESPONSE_KEYS
    assert (body["queue"], body["successful"], body["failed"]) == ("default", 10, 0)
    assert batch_calls.call_count == 1
    in_sqs = {m["MessageId"]: json.loads(m["Body"]) for m in drain(boto_sqs)}
    assert len(in_sqs) == 10
    for index, result in enumerate(body["results"]):
        assert set(result) == RESULT_KEYS
        assert (result["index"], result["status"], result["error"]) == (index, "sent", None)
        assert_uuid4(result["id"])
        sent = in_sqs[result["message_id"]]
        assert sent["id"] == result["id"]
        assert sent["data"] == {"n": index}
        assert (sent["source"], sent["queue"]) == ("api", "default")


def test_it_keeps_each_entrys_attributes(api_client, boto_sqs):
    response = send_batch(
        api_client,
        [
            {"message": {"message": "a"}, "attributes": {"priority": "high"}},
            {"message": {"message": "b"}, "attributes": {"retries": 2}},
            {"message": {"message": "c"}},
        ],
    )

    assert response.status_code == 200, response.content
    by_text = {json.loads(m["Body"])["message"]: m.get("MessageAttributes") for m in drain(boto_sqs)}
    assert by_text == {
        "a": {"priority": {"StringValue": "high", "DataType": "String"}},
        "b": {"retries": {"StringValue": "2", "DataType": "Number"}},
        "c": None,
    }


def test_it_records_every_message_as_sent(api_client, boto_sqs):
    body = send_batch(api_client, entries(3)).json()

    records = {str(m.standard_id): m for m in Message.objects.all()}
    assert set(records) == {r["id"] for r in body["results"]}
    for result in body["results"]:
        assert records[result["id"]].status == MessageStatus.SENT
        assert records[result["id"]].sqs_message_id == result["message_id"]


def test_it_rejects_eleven_messages_and_sends_nothing(api_client, boto_sqs, batch_calls):
    response = send_batch(api_client, entries(11))

    error = assert_error_envelope(response, 422, "VALIDATION_ERROR")
    assert error["details"]["fields"] == {
        "messages.non_field_errors": ["Ensure this field has no more than 10 elements."]
    }
    assert not batch_calls.called
    assert drain(boto_sqs) == []


def test_it_rejects_an_empty_batch(api_client, sqs_untouched):
    error = assert_error_envelope(send_batch(api_client, []), 422, "VALIDATION_ERROR")
    assert list(error["details"]["fields"]) == ["messages.non_field_errors"]


def test_it_rejects_the_whole_batch_when_one_entry_is_invalid(api_client, boto_sqs):
    batch = [{"message": notification()} for _ in range(4)]
    del batch[2]["message"]["data"]["recipient"]

    response = send_batch(api_client, batch, queue="notifications")

    error = assert_error_envelope(response, 422, "VALIDATION_ERROR")
    assert list(error["details"]["fields"]) == ["messages[2].message.data.recipient"]
    assert drain(boto_sqs, "notifications") == []
    assert Message.objects.count() == 0


def test_it_rejects_an_unknown_queue(api_client, sqs_untouched):
    error = assert_error_envelope(send_batch(api_client, entries(2), queue="nope"), 404, "QUEUE_NOT_FOUND")
    assert error["details"]["available_queues"] == [
        "default",
        "data_polling",
        "task_processing",
        "notifications",
    ]


def test_it_rejects_two_entries_with_the_same_id(api_client, boto_sqs):
    same = str(uuid.uuid4())
    batch = [{"message": {"id": same, "message": "a"}}, {"message": {"id": same, "message": "b"}}]

    assert_error_envelope(send_batch(api_client, batch), 422, "VALIDATION_ERROR")
    assert drain(boto_sqs) == []
    assert Message.objects.count() == 0


def test_it_refuses_a_batch_over_256_kib_in_total(api_client, boto_sqs):
    batch = [{"message": {"message": "x" * (100 * 1024)}} for _ in range(3)]

    error = assert_error_envelope(send_batch(api_client, batch), 413, "MESSAGE_TOO_LARGE")
    assert error["details"]["max_bytes"] == 256 * 1024
    assert drain(boto_sqs) == []
    assert Message.objects.count() == 0


def test_it_reports_entries_sqs_refused_one_by_one(api_client, boto_sqs):
    real = sqs_client.send_message_batch

    def refuse_the_second(*, queue, entries, url=None):
        results = real(queue=queue, entries=[e for e in entries if e["Id"] != "1"])
        return results + [
            sqs_client.BatchEntryResult(entry_id="1", error_code="InternalError", error_message="try later")
        ]

    with mock.patch.object(sqs_client, "send_message_batch", side_effect=refuse_the_second):
        response = send_batch(api_client, entries(3))

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["successful"], body["failed"]) == (2, 1)
    refused = body["results"][1]
    assert set(refused) == RESULT_KEYS
    assert refused["status"] == "failed"
    assert refused["message_id"] is None
    assert refused["error"] == {"code": "SQS_ERROR", "message": "Amazon SQS rejected the message: try later"}
    assert [r["status"] for r in body["results"]] == ["sent", "failed", "sent"]
    assert len(drain(boto_sqs)) == 2
    # The refused message leaves no history behind; the others are sent.
    assert sorted(str(m.standard_id) for m in Message.objects.all()) == sorted(
        [body["results"][0]["id"], body["results"][2]["id"]]
    )


def test_it_does_not_resend_a_message_already_sent(api_client, boto_sqs, batch_calls):
    known = str(uuid.uuid4())
    first = send_batch(api_client, [{"message": {"id": known, "message": "once"}}]).json()

    second = send_batch(
        api_client, [{"message": {"id": known, "message": "once"}}, {"message": {"message": "new"}}]
    ).json()

    assert second["results"][0]["message_id"] == first["results"][0]["message_id"]
    assert second["results"][0]["status"] == "sent"
    assert [len(call.kwargs["entries"]) for call in batch_calls.call_args_list] == [1, 1]
    assert len(drain(boto_sqs)) == 2
