"""The queues page: depths from SQS, redrive of dead letters, and who may press the button."""

import json

import pytest

from sqs_app.models import EventKind, Message
from sqs_app.queues import queue_spec
from sqs_app.services import message_send
from tests.admin.conftest import dead_lettered, shown_messages
from tests.helpers import drain, make_sqs_unreachable, notification

pytestmark = pytest.mark.django_db

QUEUES = "/admin/sqs_app/message/queues/"


def dlq_count(boto_sqs, queue: str = "notifications") -> int:
    url = boto_sqs.get_queue_url(QueueName=queue_spec(queue).dlq_name)["QueueUrl"]
    attributes = boto_sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(count) for count in attributes.values())


def test_the_queues_page_shows_depths_and_dead_letters(admin_client, sqs):
    message_send(queue="notifications", message=notification())
    message_send(queue="notifications", message=notification())
    dead_lettered()

    response = admin_client.get(QUEUES)

    assert response.status_code == 200
    rows = {row["name"]: row for row in response.context["rows"]}
    assert (rows["notifications"]["visible"], rows["notifications"]["dead"]) == (2, 1)
    assert all(
        (row["visible"], row["dead"]) == (0, 0) for name, row in rows.items() if name != "notifications"
    )
    content = response.content.decode()
    assert 'name="redrive-notifications"' in content
    assert 'name="redrive-default"' not in content


def test_the_queues_page_shows_an_unreachable_sqs(admin_client, sqs, settings):
    make_sqs_unreachable(settings)

    response = admin_client.get(QUEUES)

    assert response.status_code == 200
    assert "SQS_UNAVAILABLE" in response.content.decode()


def test_redrive_moves_dead_letters_back_onto_the_queue(admin_client, boto_sqs):
    first, second = dead_lettered("first"), dead_lettered("second")

    response = admin_client.post(f"{QUEUES}notifications/redrive/", follow=True)

    assert response.redirect_chain == [(QUEUES, 302)]
    assert "Redrove 2 message(s) from the notifications DLQ." in shown_messages(response)
    assert dlq_count(boto_sqs) == 0
    replayed = {json.loads(m["Body"])["id"] for m in drain(boto_sqs, "notifications")}
    assert replayed == {str(first.standard_id), str(second.standard_id)}
    assert Message.objects.get(pk=first.pk).events.last().actor == "admin"


def test_redrive_is_a_post_only(admin_client, boto_sqs):
    dead_lettered()

    response = admin_client.get(f"{QUEUES}notifications/redrive/")

    assert response.status_code == 302
    assert dlq_count(boto_sqs) == 1


def test_a_viewer_sees_depths_but_no_redrive_button_and_a_crafted_redrive_gets_403(viewer_client, boto_sqs):
    dead_lettered()

    page = viewer_client.get(QUEUES)
    crafted = viewer_client.post(f"{QUEUES}notifications/redrive/")

    assert page.status_code == 200
    assert "Redrive dead letters" not in page.content.decode()
    assert crafted.status_code == 403
    assert dlq_count(boto_sqs) == 1
    assert Message.objects.get().events.filter(kind=EventKind.REPLAYED).count() == 0


def test_a_user_who_is_not_staff_cannot_redrive(client, user, boto_sqs):
    client.force_login(user)
    dead_lettered()

    response = client.post(f"{QUEUES}notifications/redrive/")

    assert response.status_code == 302
    assert dlq_count(boto_sqs) == 1


def test_sends_replays_and_redrives_from_the_admin_are_in_the_audit_log(admin_client, boto_sqs):
    from sqs_app.models import AuditEntry
    from tests.admin.conftest import run_action

    replayed, redriven = dead_lettered("replayed"), dead_lettered("redriven")
    run_action(admin_client, "/admin/sqs_app/message/", "replay_from_dlq", [replayed])
    admin_client.post(f"{QUEUES}notifications/redrive/")
    admin_client.post(
        "/admin/sqs_app/message/send/?type=raw",
        {"queue_name": "notifications", "message": json.dumps(notification())},
    )

    entries = [(e.action, e.via, e.actor, e.queue, e.count) for e in AuditEntry.objects.order_by("id")]
    assert entries == [
        ("replay", "admin", "admin", "notifications", 1),
        ("redrive", "admin", "admin", "notifications", 1),
        ("send", "admin", "admin", "notifications", 1),
    ]
    assert redriven.pk
