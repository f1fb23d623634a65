"""The message list: one line per message, filters, search, and history that cannot be changed."""

from datetime import timedelta

import pytest
from django.utils import timezone

from sqs_app.models import EventKind, Message, MessageStatus
from sqs_app.services import message_send
from tests.admin.conftest import dead_lettered, grant
from tests.helpers import data_polling, notification, processing

pytestmark = pytest.mark.django_db

MESSAGES = "/admin/sqs_app/message/"


def listed(response) -> list[int]:
    return [m.pk for m in response.context["cl"].result_list]


def row(**fields) -> Message:
    defaults = {"queue": "default", "body": {"message": "hello"}, "status": MessageStatus.SENT}
    return Message.objects.create(**(defaults | fields))


# --- columns ------------------------------------------------------------------------------


def test_each_message_is_one_line_of_short_ids_badges_and_a_summary(admin_client, sqs):
    sent = message_send(queue="notifications", message=notification(subject="Quarterly numbers"))
    failed = dead_lettered()

    response = admin_client.get(MESSAGES)

    assert response.status_code == 200
    content = response.content.decode()
    # The short id, the whole id one click away (copy) and in the tooltip.
    assert f"<code>{sent.message_id[:8]}…</code>" in content
    assert f'data-copy="{sent.message_id}"' in content
    assert "Tell Alice her export is ready" in content  # the body's summary
    assert "HTTP 404 from the webhook" in content  # the last error instead, for a failed one
    headers = [h["text"] for h in response.context["result_headers"]]
    assert headers[1:] == [
        "message id",
        "task type",
        "status",
        "queue",
        "attempts",
        "age",
        "sender",
        "summary or last error",
    ]
    assert listed(response) == [failed.pk, sent.record.pk]


# --- filters ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("queue__exact=task_processing", {"processing"}),
        ("status__exact=failed", {"failed"}),
        ("task_type__exact=data_polling", {"polling"}),
        ("priority__exact=high", {"notification"}),
        ("source__exact=lambda", {"polling"}),
    ],
)
def test_the_list_filters_by_queue_status_task_type_priority_and_source(admin_client, query, expected):
    made = {
        "notification": row(queue="notifications", task_type="notification", priority="high", source="api"),
        "processing": row(queue="task_processing", task_type="processing", priority="low", source="api"),
        "polling": row(queue="data_polling", task_type="data_polling", source="lambda"),
        "failed": row(queue="notifications", task_type="notification", status=MessageStatus.FAILED),
    }

    response = admin_client.get(f"{MESSAGES}?{query}")

    assert response.status_code == 200
    assert set(listed(response)) == {made[name].pk for name in expected}


def test_the_list_filters_by_sender_and_offers_every_filter(admin_client, staff, user):
    mine, theirs = row(sent_by=staff), row(sent_by=user)

    response = admin_client.get(f"{MESSAGES}?sent_by__id__exact={user.pk}")

    assert listed(response) == [theirs.pk]
    assert mine.pk not in listed(response)
    titles = [f.title for f in response.context["cl"].filter_specs]
    assert titles == ["queue", "status", "task type", "priority", "source", "sent by", "created at"]


def test_the_list_filters_by_a_date_range(admin_client):
    old, recent = row(), row()
    Message.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))
    since = timezone.now() - timedelta(days=1)

    response = admin_client.get(
        MESSAGES,
        {"created_at_from_0": since.strftime("%Y-%m-%d"), "created_at_from_1": since.strftime("%H:%M:%S")},
    )

    assert listed(response) == [recent.pk]


# --- search ------------------------------------------------------------------------------------------


@pytest.fixture
def searchable(sqs):
    target = message_send(
        queue="notifications",
        message={**notification(body="The flamingo shipment left"), "correlation_id": "order-4711"},
    ).record
    message_send(queue="task_processing", message=processing())
    message_send(queue="data_polling", message=data_polling())
    broken = dead_lettered("broken")
    Message.objects.filter(pk=broken.pk).update(last_error="Connection reset by peer at the gateway")
    return target, broken


@pytest.mark.parametrize(
    "term",
    [
        lambda t: t.sqs_message_id,
        lambda t: str(t.standard_id),
        lambda t: "order-4711",
        lambda t: "flamingo",
        lambda t: "FLAMINGO shipment",
    ],
    ids=["sqs id", "message id", "correlation id", "a word of the body", "any case, two words"],
)
def test_search_finds_a_message_by_id_correlation_id_and_body_text(admin_client, searchable, term):
    target, _ = searchable

    response = admin_client.get(MESSAGES, {"q": term(target)})

    assert listed(response) == [target.pk]


def test_search_finds_a_message_by_its_error_text(admin_client, searchable):
    _, broken = searchable

    response = admin_client.get(MESSAGES, {"q": "reset by peer"})

    assert listed(response) == [broken.pk]


def test_search_for_nothing_known_finds_nothing(admin_client, searchable):
    response = admin_client.get(MESSAGES, {"q": "no-such-thing-anywhere"})

    assert listed(response) == []


# --- history is read-only -----------------------------------------------------------------------------


def test_history_rows_cannot_be_added_changed_or_deleted(admin_client):
    message = row()

    add = admin_client.get(f"{MESSAGES}add/")
    delete = admin_client.post(f"{MESSAGES}{message.pk}/delete/", {"post": "yes"})
    change = admin_client.post(f"{MESSAGES}{message.pk}/change/", {"status": "succeeded", "queue": "x"})
    bulk = admin_client.post(MESSAGES, {"action": "delete_selected", "_selected_action": [message.pk]})
    listing = admin_client.get(MESSAGES)

    assert add.status_code == 403
    assert delete.status_code == 403
    assert change.status_code == 200  # the trace page again: a POST changes nothing
    assert bulk.status_code in (200, 302)
    assert "delete_selected" not in dict(listing.context["action_form"].fields["action"].choices)
    message.refresh_from_db()
    assert (message.status, message.queue) == (MessageStatus.SENT, "default")
    assert Message.objects.count() == 1


def test_events_cannot_be_changed_or_deleted_either(admin_client):
    event = row().events.create(kind=EventKind.SENT, actor="admin")

    assert admin_client.get(f"/admin/sqs_app/messageevent/{event.pk}/delete/").status_code == 403
    assert admin_client.get("/admin/sqs_app/messageevent/add/").status_code == 403
    assert admin_client.get("/admin/sqs_app/messageevent/").status_code == 200


# --- who sees what ---------------------------------------------------------------------------------------


def test_without_view_all_a_user_sees_only_the_messages_they_sent(client, django_user_model, staff):
    sender = django_user_model.objects.create_user("sam", password="pw-123456789", is_staff=True)
    grant(sender, "sqs_app.view_message")
    own, other = row(sent_by=sender), row(sent_by=staff)
    client.force_login(sender)

    response = client.get(MESSAGES)

    assert listed(response) == [own.pk]
    assert client.get(f"{MESSAGES}{other.pk}/change/").status_code == 404


def test_a_staff_user_without_view_permission_gets_403(client, django_user_model):
    nobody = django_user_model.objects.create_user("nora", password="pw-123456789", is_staff=True)
    client.force_login(nobody)

    assert client.get(MESSAGES).status_code == 403


@pytest.mark.parametrize("path", [MESSAGES, f"{MESSAGES}send/", f"{MESSAGES}queues/", "/admin/"])
def test_a_user_who_is_not_staff_is_sent_to_the_login_page(client, user, sqs_untouched, path):
    client.force_login(user)

    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


# --- replay (the one action): tests/admin/test_bulk_replay.py ----------------------------------------------


def test_on_postgresql_trigram_indexes_serve_the_body_and_error_search(admin_client):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the trigram indexes exist on PostgreSQL only; SQLite scans")
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'sqs_app_message'")
        indexes = dict(cursor.fetchall())
    assert "gin_trgm_ops" in indexes["sqs_message_body_trgm"]
    assert "upper((body)::text)" in indexes["sqs_message_body_trgm"]
    assert "gin_trgm_ops" in indexes["sqs_message_error_trgm"]
    # The search's own SQL names the same expressions, so the planner can use them.
    queryset, _ = (
        admin_client.get(MESSAGES)
        .context["cl"]
        .model_admin.get_search_results(None, Message.objects.all(), "flamingo")
    )
    sql = str(queryset.query)
    assert 'UPPER(("sqs_app_message"."body")::text)' in sql
    assert 'UPPER("sqs_app_message"."last_error")' in sql
