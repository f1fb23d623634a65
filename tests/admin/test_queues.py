"""The queues page: depths from SQS, redrive of dead letters, and who may press the button."""

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from sqs_app.models import EventKind, Message, MessageStatus
from sqs_app.queues import queue_spec
from sqs_app.services import message_send
from tasks_app.consumers import consumers_record
from tests.admin.conftest import dead_lettered
from tests.helpers import make_sqs_unreachable, notification

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
    assert 'href="/admin/sqs_app/message/dead-letters/notifications/">1<' in content


def test_the_queues_page_shows_retries_oldest_age_and_consumers_and_refreshes_itself(admin_client, sqs):
    waiting = message_send(queue="notifications", message=notification())
    Message.objects.filter(sqs_message_id=waiting.message_id).update(
        status=MessageStatus.RETRYING, created_at=timezone.now() - timedelta(seconds=90)
    )
    now = timezone.now()
    consumers_record(hostname="w1", pid=7, started_at=now, last_polls={"notifications": now})
    consumers_record(
        hostname="w2", pid=8, started_at=now, last_polls={"task_processing": now - timedelta(hours=0.5)}
    )

    response = admin_client.get(QUEUES)

    rows = {row["name"]: row for row in response.context["rows"]}
    assert rows["notifications"]["retrying"] == 1
    assert 89 <= rows["notifications"]["oldest_age_seconds"] <= 120
    content = response.content.decode()
    notifications = table_row(content, "notifications")
    assert re.search(
        r'class="num retrying-count"><a href="[^"]*status__exact=retrying[^"]*">1</a>', notifications
    )
    assert re.search(r'class="num oldest-age"><a href="[^"]*created_at__lt=[^"]*">\d+ s</a>', notifications)
    assert "1, last poll" in notifications
    assert "stalled (1)" in table_row(content, "task_processing")
    assert "none" in table_row(content, "default")
    assert f'id="queues-live" hx-get="{QUEUES}" hx-trigger="every 10s"' in content


def table_row(content: str, queue: str) -> str:
    return re.search(rf'<tr data-queue="{queue}">(.*?)</tr>', content, re.S).group(1)


def test_the_queues_page_shows_an_unreachable_sqs(admin_client, sqs, settings):
    make_sqs_unreachable(settings)

    response = admin_client.get(QUEUES)

    assert response.status_code == 200
    assert "SQS_UNAVAILABLE" in response.content.decode()


def test_each_queue_links_its_dead_letters_and_purge_to_whoever_may(admin_client, viewer_client, sqs):
    dead_lettered()

    admin_page = admin_client.get(QUEUES).content.decode()
    viewer_page = viewer_client.get(QUEUES).content.decode()

    assert 'href="/admin/sqs_app/message/dead-letters/notifications/"' in admin_page
    assert 'id="purge-notifications"' in admin_page
    assert 'href="/admin/sqs_app/message/dead-letters/notifications/"' in viewer_page
    assert "purge-" not in viewer_page


def test_the_old_one_click_redrive_url_is_gone(admin_client, boto_sqs):
    dead_lettered()

    response = admin_client.post(f"{QUEUES}notifications/redrive/")

    assert response.status_code in (302, 404)  # the admin's catch-all: no such page
    assert dlq_count(boto_sqs) == 1


def test_sends_replays_redrives_deletes_and_purges_from_the_admin_are_in_the_audit_log(
    admin_client, boto_sqs
):
    from sqs_app.models import AuditEntry, OperatorRun
    from tests.admin.conftest import run_to_end
    from tests.admin.test_replay import replay

    replayed, redriven = dead_lettered("replayed"), dead_lettered("redriven")
    replay(admin_client, replayed)
    dlq_id = redriven.events.get(kind=EventKind.FAILED).detail["dlq_message_id"]
    admin_client.post(
        "/admin/sqs_app/message/dead-letters/notifications/", {"action": "redrive_selected", "ids": [dlq_id]}
    )
    run = OperatorRun.objects.get()
    admin_client.post(f"/admin/sqs_app/operatorrun/{run.pk}/confirm/", {"rate": "50"})
    run_to_end(run.pk)
    admin_client.post(
        "/admin/sqs_app/message/send/?type=raw",
        {"queue_name": "notifications", "message": json.dumps(notification())},
    )
    admin_client.post(f"{QUEUES}default/purge/", {"confirm": "default"})

    entries = [(e.action, e.via, e.actor, e.queue, e.count) for e in AuditEntry.objects.order_by("id")]
    assert entries == [
        ("replay", "admin", "admin", "notifications", 1),
        ("redrive", "admin", "admin", "notifications", 1),
        ("send", "admin", "admin", "notifications", 1),
        ("purge", "admin", "admin", "default", 0),
    ]
