"""GET /sqs/messages and /sqs/messages/{id}: the message history and its timeline."""

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest

from sqs_app.models import Message
from tests.helpers import assert_error_envelope, data_polling, notification, send

pytestmark = pytest.mark.django_db

PAGE_KEYS = {"count", "next", "previous", "results"}
RECORD_KEYS = {
    "message_id",
    "id",
    "queue",
    "status",
    "task_type",
    "priority",
    "correlation_id",
    "source",
    "sent_by",
    "receive_count",
    "attempts",
    "last_error",
    "created_at",
    "updated_at",
    "sent_at",
    "processing_started_at",
    "finished_at",
    "next_attempt_at",
}
DETAIL_KEYS = RECORD_KEYS | {"body", "attributes", "events", "task_result"}
EVENT_KEYS = {"kind", "at", "actor", "detail"}


def history(client, **params):
    return client.get(f"/sqs/messages?{urlencode(params)}")


def ids_of(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [r["message_id"] for r in response.json()["results"]]


@pytest.fixture
def sent(api_client, sqs):
    """Three messages, oldest first: a notification, a poll and a plain message."""
    return [
        send(api_client, notification() | {"correlation_id": "order-1"}, queue="notifications").json()[
            "message_id"
        ],
        send(api_client, data_polling() | {"correlation_id": "order-2"}, queue="data_polling").json()[
            "message_id"
        ],
        send(api_client, {"message": "plain", "correlation_id": "order-1"}).json()["message_id"],
    ]


# --- The list ------------------------------------------------------------------------------


def test_it_lists_messages_newest_first_in_the_page_shape(api_client, sent):
    response = history(api_client)

    body = response.json()
    assert set(body) == PAGE_KEYS
    assert (body["count"], body["next"], body["previous"]) == (3, None, None)
    assert ids_of(response) == sent[::-1]
    first = body["results"][-1]
    assert set(first) == RECORD_KEYS
    assert first["queue"] == "notifications"
    assert first["status"] == "sent"
    assert first["task_type"] == "notification"
    assert first["priority"] == "high"
    assert first["correlation_id"] == "order-1"
    assert first["source"] == "api"
    assert first["sent_by"] == "alice"
    assert first["receive_count"] == 0
    assert first["attempts"] == 0
    assert first["processing_started_at"] is None
    assert first["finished_at"] is None
    assert first["last_error"] == ""
    uuid.UUID(first["id"])
    datetime.fromisoformat(first["sent_at"])


def test_it_lists_nothing_when_nothing_was_sent(api_client):
    assert history(api_client).json() == {"count": 0, "next": None, "previous": None, "results": []}


FILTERS = [
    ({"queue": "notifications"}, [0]),
    ({"queue": "default"}, [2]),
    ({"task_type": "data_polling"}, [1]),
    ({"correlation_id": "order-1"}, [2, 0]),
    ({"status": "sent"}, [2, 1, 0]),
    ({"status": "received"}, []),
    ({"queue": "default", "correlation_id": "order-2"}, []),
]


def test_it_filters_by_queue_task_type_correlation_id_and_status(api_client, sent):
    # One test over the cases, so that the three messages are sent only once.
    for params, expected in FILTERS:
        assert ids_of(history(api_client, **params)) == [sent[i] for i in expected], params


def test_it_filters_by_status_after_a_receive(api_client, sent):
    api_client.get("/sqs/receive/data_polling")

    assert ids_of(history(api_client, status="received")) == [sent[1]]


def test_it_filters_by_creation_time(api_client, sent):
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for days, message_id in enumerate(sent):
        Message.objects.filter(sqs_message_id=message_id).update(created_at=base + timedelta(days=days))

    after = (base + timedelta(days=1)).isoformat()
    before = (base + timedelta(days=2)).isoformat()
    assert ids_of(history(api_client, created_after=after)) == [sent[2], sent[1]]
    assert ids_of(history(api_client, created_before=before)) == [sent[1], sent[0]]
    assert ids_of(history(api_client, created_after=after, created_before=before)) == [sent[1]]


def test_it_pages_the_list(api_client, sent):
    first = history(api_client, page_size=2).json()

    assert set(first) == PAGE_KEYS
    assert first["count"] == 3
    assert first["previous"] is None
    assert first["next"].endswith("/sqs/messages?page=2&page_size=2")
    assert [r["message_id"] for r in first["results"]] == [sent[2], sent[1]]

    second = api_client.get(first["next"]).json()
    assert second["next"] is None
    assert second["previous"].endswith("/sqs/messages?page_size=2")
    assert [r["message_id"] for r in second["results"]] == [sent[0]]


def test_it_answers_404_for_a_page_past_the_end(api_client, sent):
    assert_error_envelope(history(api_client, page=9), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"created_after": "last tuesday"}, "created_after"),
        ({"created_before": "2026-13-01"}, "created_before"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 201}, "page_size"),
        ({"page": "first"}, "page"),
    ],
)
def test_it_rejects_an_invalid_filter(api_client, params, field):
    error = assert_error_envelope(history(api_client, **params), 400, "INVALID_PARAMETER")
    assert list(error["details"]["fields"]) == [field]


def test_the_list_needs_authentication(anon_client):
    assert_error_envelope(history(anon_client), 401, "NOT_AUTHENTICATED")


# --- One message -----------------------------------------------------------------------------


@pytest.fixture
def lived(api_client, sqs):
    """A message that was sent, received and deleted through the API."""
    sent = send(api_client, notification(), queue="notifications", attributes={"tenant": "acme"}).json()
    [received] = api_client.get("/sqs/receive/notifications").json()["messages"]
    api_client.delete(
        f"/sqs/message/notifications?{urlencode({'receipt_handle': received['receipt_handle']})}"
    )
    return sent["message_id"], received["body"]["id"]


def test_it_shows_a_message_by_its_sqs_id_with_the_events_in_order(api_client, lived):
    sqs_id, standard_id = lived

    response = api_client.get(f"/sqs/messages/{sqs_id}")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == DETAIL_KEYS
    assert (body["message_id"], body["id"], body["status"]) == (sqs_id, standard_id, "deleted")
    assert body["receive_count"] == 1
    assert body["task_result"] is None
    assert body["body"]["id"] == standard_id
    assert body["body"]["data"]["recipient"] == "alice@example.com"
    assert body["attributes"] == {"tenant": {"DataType": "String", "StringValue": "acme"}}
    assert [e["kind"] for e in body["events"]] == ["sent", "received", "deleted"]
    for event in body["events"]:
        assert set(event) == EVENT_KEYS
        assert event["actor"] == "alice"
    times = [datetime.fromisoformat(e["at"]) for e in body["events"]]
    assert times == sorted(times)
    assert body["events"][0]["detail"] == {"sqs_message_id": sqs_id}
    assert body["events"][1]["detail"] == {"receive_count": 1, "sqs_message_id": sqs_id}


def test_it_shows_a_message_by_its_standard_message_id(api_client, lived):
    sqs_id, standard_id = lived

    by_standard_id = api_client.get(f"/sqs/messages/{standard_id}").json()

    assert by_standard_id == api_client.get(f"/sqs/messages/{sqs_id}").json()


@pytest.mark.parametrize("message_id", ["no-such-message", "6f1c2b1e-8d55-4c1b-9f7e-111111111111"])
def test_it_answers_404_for_an_unknown_id(api_client, message_id):
    error = assert_error_envelope(api_client.get(f"/sqs/messages/{message_id}"), 404, "MESSAGE_NOT_FOUND")
    assert error["details"] == {"message_id": message_id}


def test_the_detail_needs_authentication(anon_client):
    assert_error_envelope(anon_client.get("/sqs/messages/anything"), 401, "NOT_AUTHENTICATED")
