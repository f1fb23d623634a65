"""Purge a queue or a DLQ from the admin: a page that names it and its depth, the name typed to confirm."""

import pytest

from sqs_app.models import AuditEntry
from sqs_app.services import message_send
from tests.admin.conftest import dead_lettered, shown_messages
from tests.helpers import make_sqs_unreachable, message_count

pytestmark = pytest.mark.django_db

PURGE = "/admin/sqs_app/message/queues/{}/purge/"


def dlq_count(boto_sqs, queue: str = "notifications") -> int:
    url = boto_sqs.get_queue_url(QueueName=f"wipsie-{queue}-dlq")["QueueUrl"]
    attributes = boto_sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def test_the_confirmation_names_the_queue_and_its_depth_and_purges_nothing(admin_client, boto_sqs):
    for n in range(3):
        message_send(queue="default", message={"message": f"m{n}"})

    response = admin_client.get(PURGE.format("default"))

    assert response.status_code == 200
    content = response.content.decode()
    assert "Purge the default queue?" in content
    assert "It holds about <strong>3</strong> messages now: 3 visible, 0 in flight, 0 delayed." in content
    assert message_count(boto_sqs, "default") == 3


def test_a_wrong_name_purges_nothing_and_says_so_beside_the_field(admin_client, boto_sqs):
    message_send(queue="default", message={"message": "m"})

    response = admin_client.post(PURGE.format("default"), {"confirm": "yes"})

    assert response.context["form"].errors["confirm"] == ["Type default to purge it; nothing was purged."]
    assert message_count(boto_sqs, "default") == 1
    assert not AuditEntry.objects.exists()


def test_the_queues_name_purges_it_and_the_purge_is_audited(admin_client, boto_sqs):
    for n in range(2):
        message_send(queue="default", message={"message": f"m{n}"})

    response = admin_client.post(PURGE.format("default"), {"confirm": "default"}, follow=True)

    assert response.redirect_chain == [("/admin/sqs_app/message/queues/", 302)]
    assert shown_messages(response) == [
        "Purged the default queue: about 2 message(s) (SQS finishes within 60 s)."
    ]
    assert message_count(boto_sqs, "default") == 0
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.via, entry.actor, entry.queue, entry.count) == (
        "purge",
        "admin",
        "admin",
        "default",
        2,
    )
    assert entry.detail == {"dead_letters": False}


def test_a_dlq_purge_leaves_its_queue_alone(admin_client, boto_sqs):
    dead_lettered()
    message_send(queue="notifications", message={"message": "kept"})

    page = admin_client.get(PURGE.format("notifications") + "?dlq=1")
    response = admin_client.post(
        PURGE.format("notifications") + "?dlq=1", {"confirm": "notifications"}, follow=True
    )

    assert "Purge the notifications dead-letter queue?" in page.content.decode()
    assert response.redirect_chain == [("/admin/sqs_app/message/dead-letters/notifications/", 302)]
    assert dlq_count(boto_sqs) == 0
    assert message_count(boto_sqs, "notifications") == 1
    assert AuditEntry.objects.get().detail == {"dead_letters": True}


def test_sqs_down_is_shown_on_the_page_and_audited_as_failed(admin_client, sqs, settings):
    make_sqs_unreachable(settings)

    page = admin_client.get(PURGE.format("default"))
    response = admin_client.post(PURGE.format("default"), {"confirm": "default"})

    assert "SQS did not answer" in page.content.decode()
    assert response.status_code == 200
    assert "SQS_UNAVAILABLE" in response.content.decode()
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.succeeded, entry.detail) == ("purge", False, {"error": "SQS_UNAVAILABLE"})


def test_a_viewer_gets_403_for_the_page_and_a_crafted_purge(viewer_client, boto_sqs):
    message_send(queue="default", message={"message": "m"})

    page = viewer_client.get(PURGE.format("default"))
    crafted = viewer_client.post(PURGE.format("default"), {"confirm": "default"})

    assert (page.status_code, crafted.status_code) == (403, 403)
    assert message_count(boto_sqs, "default") == 1


def test_a_queue_grant_limits_what_may_be_purged(default_only_client, boto_sqs):
    message_send(queue="notifications", message={"message": "m"})

    refused = default_only_client.post(PURGE.format("notifications"), {"confirm": "notifications"})
    allowed = default_only_client.get(PURGE.format("default"))

    assert (refused.status_code, allowed.status_code) == (403, 200)
    assert message_count(boto_sqs, "notifications") == 1


def test_an_unknown_queue_is_a_404(admin_client, sqs_untouched):
    assert admin_client.get(PURGE.format("nope")).status_code == 404
