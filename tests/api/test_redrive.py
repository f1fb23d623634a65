"""POST /sqs/dlq/{queue}/redrive: dead-lettered messages back onto their queue, on the moto server."""

import json

import pytest

from sqs_app.models import EventKind, Message, MessageStatus
from sqs_app.queues import queue_spec
from sqs_app.schemas import build_standard_message
from tests.helpers import assert_error_envelope, drain, notification, worker_claim, worker_failed

pytestmark = pytest.mark.django_db

QUEUE = "notifications"


def dead_lettered(subject: str) -> Message:
    """A notification that a worker took, failed permanently and put on the DLQ."""
    body = build_standard_message(message=notification(subject=subject), queue=QUEUE, source="api")
    return worker_failed(
        queue=QUEUE,
        raw_body=json.dumps(body),
        sqs_message_id=f"sqs-{subject}",
        error="HTTP 404 from the webhook",
    )


def dlq_depth(boto_sqs) -> tuple[int, int]:
    """(visible, in flight) on the notifications DLQ."""
    url = boto_sqs.get_queue_url(QueueName=queue_spec(QUEUE).dlq_name)["QueueUrl"]
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = boto_sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return int(attributes[names[0]]), int(attributes[names[1]])


def redrive(client, queue: str = QUEUE, **payload):
    return client.post(f"/sqs/dlq/{queue}/redrive", payload, format="json")


@pytest.fixture
def failed(sqs):
    return [dead_lettered("first"), dead_lettered("second"), dead_lettered("third")]


def test_it_replays_every_dead_letter_onto_the_queue(api_client, boto_sqs, failed):
    response = redrive(api_client)

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["queue"], body["replayed"]) == (QUEUE, 3)
    assert all(set(m) == {"dlq_message_id", "message_id"} for m in body["messages"])
    on_queue = drain(boto_sqs, QUEUE)
    assert {m["MessageId"] for m in on_queue} == {m["message_id"] for m in body["messages"]}
    replayed_bodies = [json.loads(m["Body"]) for m in on_queue]
    assert sorted(b["id"] for b in replayed_bodies) == sorted(str(r.standard_id) for r in failed)
    assert all("last_error" not in b for b in replayed_bodies)
    assert dlq_depth(boto_sqs) == (0, 0)


def test_a_replayed_message_has_its_history_reset_with_a_replayed_event(api_client, boto_sqs, failed):
    response = redrive(api_client)

    new_ids = {m["message_id"] for m in response.json()["messages"]}
    for record in Message.objects.filter(pk__in=[r.pk for r in failed]):
        assert record.status == MessageStatus.SENT
        assert record.sqs_message_id in new_ids
        assert record.celery_task_id == ""
        assert record.finished_at is None
        event = record.events.last()
        assert event.kind == EventKind.REPLAYED
        assert event.actor == "alice"
        assert event.detail == {"previous_status": "failed"}


def test_a_replayed_message_is_processed_again_rather_than_skipped_as_a_duplicate(
    api_client, boto_sqs, failed
):
    redrive(api_client)
    [delivery] = [
        m for m in drain(boto_sqs, QUEUE) if json.loads(m["Body"])["id"] == str(failed[0].standard_id)
    ]

    claim = worker_claim(queue=QUEUE, raw_body=delivery["Body"], sqs_message_id=delivery["MessageId"])

    assert claim.pk == failed[0].pk
    assert claim.claimed
    assert Message.objects.get(pk=claim.pk).attempts == 2


def test_it_replays_only_the_given_message_ids(api_client, boto_sqs, failed):
    chosen = failed[1]

    response = redrive(api_client, message_ids=[str(chosen.standard_id)])

    assert response.status_code == 200, response.content
    assert response.json()["replayed"] == 1
    [on_queue] = drain(boto_sqs, QUEUE)
    assert json.loads(on_queue["Body"])["id"] == str(chosen.standard_id)
    # The others were looked at, then handed back: visible again, not hidden.
    assert dlq_depth(boto_sqs) == (2, 0)
    statuses = dict(Message.objects.values_list("pk", "status"))
    assert statuses == {failed[0].pk: "failed", chosen.pk: "sent", failed[2].pk: "failed"}


def test_a_message_id_may_also_be_the_dlq_message_id(api_client, boto_sqs, failed):
    dlq_message_id = failed[2].events.get(kind=EventKind.FAILED).detail["dlq_message_id"]

    response = redrive(api_client, message_ids=[dlq_message_id])

    assert response.json()["messages"][0]["dlq_message_id"] == dlq_message_id
    assert json.loads(drain(boto_sqs, QUEUE)[0]["Body"])["id"] == str(failed[2].standard_id)


def test_an_empty_dlq_replays_nothing(api_client, sqs):
    response = redrive(api_client)

    assert response.status_code == 200
    assert response.json() == {"queue": QUEUE, "replayed": 0, "messages": []}


def test_an_unknown_queue_is_queue_not_found(api_client, sqs_untouched):
    response = redrive(api_client, queue="nope")

    error = assert_error_envelope(response, 404, "QUEUE_NOT_FOUND")
    assert error["details"]["queue_name"] == "nope"
    assert "notifications" in error["details"]["available_queues"]


def test_redrive_needs_authentication(anon_client, boto_sqs, failed):
    response = redrive(anon_client)

    assert_error_envelope(response, 401, "NOT_AUTHENTICATED")
    assert dlq_depth(boto_sqs) == (3, 0)
    assert drain(boto_sqs, QUEUE) == []


def test_an_empty_list_of_message_ids_is_refused_rather_than_replaying_everything(
    api_client, boto_sqs, failed
):
    response = redrive(api_client, message_ids=[])

    error = assert_error_envelope(response, 422, "VALIDATION_ERROR")
    assert list(error["details"]["fields"]) == ["message_ids"]
    assert dlq_depth(boto_sqs) == (3, 0)
    assert drain(boto_sqs, QUEUE) == []
