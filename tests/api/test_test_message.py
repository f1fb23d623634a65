"""POST /sqs/test-message: a fixed message to the default queue."""

import json

import pytest

from sqs_app import services
from sqs_app.models import Message, MessageStatus
from tests.helpers import assert_error_envelope, assert_uuid4, drain, make_sqs_unreachable

pytestmark = pytest.mark.django_db


def test_it_sends_the_test_message_and_answers_in_the_spec_shape(api_client, boto_sqs):
    response = api_client.post("/sqs/test-message")

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"status", "test_message", "result"}
    assert body["status"] == "success"
    assert set(body["test_message"]) == {"type", "message", "source", "data"}
    assert body["test_message"] == services.test_message_build()
    assert body["test_message"]["data"]["test_id"] == "api-test-001"
    assert set(body["result"]) == {"message_id", "queue", "status"}
    assert (body["result"]["queue"], body["result"]["status"]) == ("default", "sent")
    [in_sqs] = drain(boto_sqs, "default")
    assert in_sqs["MessageId"] == body["result"]["message_id"]
    sent = json.loads(in_sqs["Body"])
    assert (sent["type"], sent["message"], sent["data"]) == (
        "test",
        body["test_message"]["message"],
        body["test_message"]["data"],
    )
    # It is a StandardMessage like any other.
    assert_uuid4(sent["id"])
    assert (sent["queue"], sent["source"]) == ("default", "api")


def test_it_records_the_test_message(api_client, sqs):
    body = api_client.post("/sqs/test-message").json()

    record = Message.objects.get()
    assert record.sqs_message_id == body["result"]["message_id"]
    assert record.status == MessageStatus.SENT


def test_each_test_message_is_a_new_message(api_client, boto_sqs):
    first = api_client.post("/sqs/test-message").json()
    second = api_client.post("/sqs/test-message").json()

    assert first["result"]["message_id"] != second["result"]["message_id"]
    assert len(drain(boto_sqs, "default")) == 2


def test_it_only_accepts_post(api_client, sqs_untouched):
    assert_error_envelope(api_client.get("/sqs/test-message"), 405, "METHOD_NOT_ALLOWED")


def test_it_needs_authentication(anon_client, sqs_untouched):
    assert_error_envelope(anon_client.post("/sqs/test-message"), 401, "NOT_AUTHENTICATED")


def test_it_reports_sqs_unreachable_as_503(api_client, sqs, settings):
    make_sqs_unreachable(settings)

    assert_error_envelope(api_client.post("/sqs/test-message"), 503, "SQS_UNAVAILABLE")
    assert Message.objects.count() == 0
