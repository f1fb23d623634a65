"""Replay one message from its trace page, as sent or edited: a new message linked to its original."""

import json

import pytest
from django.utils.html import strip_tags

from sqs_app.models import AuditEntry, EventKind, Message, MessageStatus
from sqs_app.services import message_send
from tests.admin.conftest import dead_lettered, shown_messages
from tests.helpers import drain, notification

pytestmark = pytest.mark.django_db

MESSAGES = "/admin/sqs_app/message/"


def replay_page(client, record: Message, kind: str = ""):
    return client.get(f"{MESSAGES}{record.pk}/replay/" + (f"?type={kind}" if kind else ""))


def form_data(response) -> dict:
    """The replay form as the browser would post it: every field with its value as drawn."""
    form = response.context["form"]
    data = {}
    for field in form:
        value = field.value()
        if value is None or value is False:
            continue
        data[field.name] = str(value)
    return data


def replay(client, record: Message, kind: str = "", **changes):
    page = replay_page(client, record, kind)
    data = form_data(page) | changes
    return client.post(
        f"{MESSAGES}{record.pk}/replay/" + (f"?type={kind}" if kind else ""), data, follow=True
    )


def test_the_replay_form_is_the_send_form_filled_in_from_the_original(admin_client, sqs):
    original = dead_lettered("Quarterly numbers")

    response = replay_page(admin_client, original)

    assert response.status_code == 200
    form = response.context["form"]
    assert response.context["kind"] == "notification"
    assert form["queue_name"].value() == "notifications"
    assert form["data__subject"].value() == "Quarterly numbers"
    assert form["data__recipient"].value() == "alice@example.com"
    assert json.loads(form["data__metadata"].value()) == {"export_id": 7}
    assert "id" not in form.fields  # a replay gets a new id
    assert form["replay_id"].value()


def test_a_replay_is_a_new_message_linked_to_its_original_which_keeps_its_ids(admin_client, boto_sqs):
    original = dead_lettered("Quarterly numbers")
    before = (original.sqs_message_id, original.standard_id, original.status)

    response = replay(admin_client, original)

    [on_queue] = drain(boto_sqs, "notifications")
    new = Message.objects.get(sqs_message_id=on_queue["MessageId"])
    assert response.redirect_chain[-1][0] == f"{MESSAGES}{new.pk}/change/"
    assert [strip_tags(m) for m in shown_messages(response)] == [
        f"Replayed as new message {new.sqs_message_id} on notifications."
    ]
    body = json.loads(on_queue["Body"])
    assert body["id"] != str(original.standard_id)
    assert body["replay_of"] == str(original.standard_id)
    assert body["source"] == "manual" and "last_error" not in body
    assert new.replay_of == original
    original.refresh_from_db()
    assert (original.sqs_message_id, original.standard_id, original.status) == before
    event = original.events.get(kind=EventKind.REPLAYED)
    assert (event.actor, event.detail["replay_message_id"]) == ("admin", new.sqs_message_id)
    entry = AuditEntry.objects.get(action="replay")
    assert (entry.via, entry.actor, entry.queue, entry.message_ids) == (
        "admin",
        "admin",
        "notifications",
        [new.sqs_message_id],
    )


def test_both_trace_pages_link_the_replay_and_its_original(admin_client, boto_sqs):
    original = dead_lettered()
    replay(admin_client, original)
    new = Message.objects.get(replay_of=original)

    original_page = admin_client.get(f"{MESSAGES}{original.pk}/change/").content.decode()
    new_page = admin_client.get(f"{MESSAGES}{new.pk}/change/").content.decode()

    assert f'class="trace-replay" href="{MESSAGES}{new.pk}/change/"' in original_page
    assert f'id="trace-replay-of" href="{MESSAGES}{original.pk}/change/"' in new_page


def test_an_edited_replay_sends_the_edit(admin_client, boto_sqs):
    original = dead_lettered("Old subject")

    replay(admin_client, original, data__subject="New subject", data__recipient="bob@example.com")

    [on_queue] = drain(boto_sqs, "notifications")
    data = json.loads(on_queue["Body"])["data"]
    assert (data["subject"], data["recipient"]) == ("New subject", "bob@example.com")
    assert Message.objects.get(pk=original.pk).body["data"]["subject"] == "Old subject"
    assert AuditEntry.objects.get(action="replay").detail["edited"] is True


def test_an_invalid_edit_shows_its_error_beside_the_field_keeps_the_edit_and_sends_nothing(
    admin_client, boto_sqs
):
    original = dead_lettered()

    response = replay(admin_client, original, data__recipient="not-an-address", correlation_id="x" * 129)

    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["data__recipient"] == ["Enter a valid email address."]
    assert form.errors["correlation_id"] == ["Ensure this field has no more than 128 characters."]
    assert form["data__recipient"].value() == "not-an-address"
    content = response.content.decode()
    assert 'value="not-an-address"' in content
    assert drain(boto_sqs, "notifications") == []
    assert Message.objects.count() == 1
    assert not AuditEntry.objects.exists()


def test_the_same_form_sent_twice_replays_once(admin_client, boto_sqs):
    original = dead_lettered()
    data = form_data(replay_page(admin_client, original))

    first = admin_client.post(f"{MESSAGES}{original.pk}/replay/", data, follow=True)
    second = admin_client.post(f"{MESSAGES}{original.pk}/replay/", data, follow=True)

    [on_queue] = drain(boto_sqs, "notifications")
    assert shown_messages(first)[0].startswith("Replayed as new message")
    assert [strip_tags(m) for m in shown_messages(second)] == [
        f"This replay was sent already ({on_queue['MessageId']}); nothing was sent again."
    ]
    assert Message.objects.filter(replay_of=original).count() == 1
    assert original.events.filter(kind=EventKind.REPLAYED).count() == 1


def test_a_replay_may_go_to_another_queue(admin_client, boto_sqs):
    original = dead_lettered()

    replay(admin_client, original, queue_name="default")

    assert drain(boto_sqs, "notifications") == []
    [on_queue] = drain(boto_sqs, "default")
    assert json.loads(on_queue["Body"])["queue"] == "default"


def test_raw_json_mode_keeps_keys_the_form_has_no_field_for(admin_client, boto_sqs):
    record = message_send(
        queue="default", message={"task_type": "user_action", "message": "hi", "tenant": "acme"}
    ).record
    drain(boto_sqs, "default")

    page = replay_page(admin_client, record)
    response = replay(admin_client, record, kind="raw")

    assert page.context["kind"] == "raw"  # a plain form would drop task_type and tenant
    assert json.loads(page.context["form"]["message"].value()) == {
        "task_type": "user_action",
        "message": "hi",
        "tenant": "acme",
        "correlation_id": record.correlation_id,
    }
    assert response.status_code == 200
    [on_queue] = drain(boto_sqs, "default")
    body = json.loads(on_queue["Body"])
    assert (body["task_type"], body["tenant"], body["replay_of"]) == (
        "user_action",
        "acme",
        str(record.standard_id),
    )


def test_a_form_that_cannot_carry_every_key_says_which_it_leaves_out(admin_client, sqs):
    record = message_send(queue="default", message={"message": "hi", "tenant": "acme"}).record

    response = replay_page(admin_client, record, kind="plain")

    assert response.context["kind"] == "raw"  # "plain" is not offered for this body
    response = admin_client.get(f"{MESSAGES}{record.pk}/replay/")
    assert response.context["kind"] == "raw"


def test_a_body_from_another_producer_is_replayed_as_raw_json_once_it_is_an_object(admin_client, boto_sqs):
    original = dead_lettered(raw_body="resize photo 17")

    response = replay(admin_client, original, kind="raw", message='{"message": "resize photo 17"}')

    assert response.status_code == 200
    [on_queue] = drain(boto_sqs, "notifications")
    assert json.loads(on_queue["Body"])["message"] == "resize photo 17"


def test_any_message_may_be_replayed_by_whoever_may_replay(admin_client, viewer_client, sqs):
    succeeded = Message.objects.create(queue="default", body={"message": "x"}, status=MessageStatus.SUCCEEDED)

    assert 'id="replay-link"' in admin_client.get(f"{MESSAGES}{succeeded.pk}/change/").content.decode()
    assert 'id="replay-link"' not in viewer_client.get(f"{MESSAGES}{succeeded.pk}/change/").content.decode()


def test_a_viewer_gets_403_for_the_replay_page_and_a_crafted_post(viewer_client, boto_sqs):
    original = dead_lettered()

    page = viewer_client.get(f"{MESSAGES}{original.pk}/replay/")
    crafted = viewer_client.post(
        f"{MESSAGES}{original.pk}/replay/?type=raw",
        {
            "queue_name": "notifications",
            "message": json.dumps(notification()),
            "replay_id": str(original.standard_id),
        },
    )

    assert (page.status_code, crafted.status_code) == (403, 403)
    assert drain(boto_sqs, "notifications") == []
    assert not Message.objects.filter(replay_of=original).exists()


def test_a_queue_grant_limits_what_may_be_replayed_and_where_to(default_only_client, default_only, boto_sqs):
    own_on_notifications = message_send(
        queue="notifications", message=notification(), sent_by=default_only
    ).record
    own_on_default = message_send(queue="default", message={"message": "x"}, sent_by=default_only).record
    drain(boto_sqs, "notifications"), drain(boto_sqs, "default")

    refused_page = default_only_client.get(f"{MESSAGES}{own_on_notifications.pk}/replay/")
    page = replay_page(default_only_client, own_on_default)
    to_other_queue = default_only_client.post(
        f"{MESSAGES}{own_on_default.pk}/replay/", form_data(page) | {"queue_name": "notifications"}
    )

    assert refused_page.status_code == 403
    assert page.status_code == 200
    assert to_other_queue.status_code == 403
    assert drain(boto_sqs, "notifications") == [] and drain(boto_sqs, "default") == []


def test_migration_0009_links_the_replays_sqs_replay_made_before_the_field_existed(sqs):
    import importlib

    from django.apps import apps

    backfill = importlib.import_module("sqs_app.migrations.0009_replay_links_backfill")
    original = dead_lettered()
    by_standard_id = Message.objects.create(
        queue="notifications",
        source="manual",
        body={"message": "again", "replay_of": str(original.standard_id)},
    )
    by_sqs_id = Message.objects.create(
        queue="default", source="manual", body={"message": "again", "replay_of": original.sqs_message_id}
    )
    unrelated = Message.objects.create(queue="default", source="manual", body={"replay_of": "nothing-known"})

    backfill.link_replays(apps, None)

    assert Message.objects.get(pk=by_standard_id.pk).replay_of == original
    assert Message.objects.get(pk=by_sqs_id.pk).replay_of == original
    assert Message.objects.get(pk=unrelated.pk).replay_of is None
