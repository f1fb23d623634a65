"""The audit log page (the sidebar's "Audit log"): filters, search by message id, read only."""

from datetime import timedelta

import pytest
from django.utils import timezone

from sqs_app.audit import audit_record
from sqs_app.models import AuditEntry

pytestmark = pytest.mark.django_db

AUDIT = "/admin/sqs_app/auditentry/"


@pytest.fixture
def entries(staff, user):
    """A replay in the admin by the superuser, a purge by a command, alice's failed redrive (API)."""
    replay = audit_record(
        action="replay",
        via="admin",
        user=staff,
        queue="notifications",
        message_ids=["4b2f09a1-5c3e-4d7a-9f10-aa01bb02cc03", "sqs-7788"],
    )
    purge = audit_record(action="purge", via="command", actor="carol", queue="default", count=12)
    redrive = audit_record(action="redrive", via="api", user=user, queue="data_polling", succeeded=False)
    AuditEntry.objects.filter(pk=purge.pk).update(at=timezone.now() - timedelta(days=3))
    return replay, purge, redrive


def listed(client, **params) -> set[int]:
    response = client.get(AUDIT, params)
    assert response.status_code == 200, response.content[:300]
    return {entry.pk for entry in response.context["cl"].result_list}


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"action__exact": "purge"}, [1]),
        ({"via__exact": "api"}, [2]),
        ({"queue__exact": "notifications"}, [0]),
        ({"succeeded__exact": "0"}, [2]),
        ({"succeeded__exact": "1"}, [0, 1]),
    ],
)
def test_it_filters_by_action_door_queue_and_outcome(admin_client, entries, params, expected):
    assert listed(admin_client, **params) == {entries[i].pk for i in expected}


def test_it_filters_by_user(admin_client, entries, user):
    assert listed(admin_client, user__id__exact=user.pk) == {entries[2].pk}


def test_it_filters_by_a_date_range(admin_client, entries):
    since = timezone.localtime() - timedelta(days=1)
    day, time = since.strftime("%Y-%m-%d"), since.strftime("%H:%M:%S")

    assert listed(admin_client, at_from_0=day, at_from_1=time) == {entries[0].pk, entries[2].pk}
    assert listed(admin_client, at_to_0=day, at_to_1=time) == {entries[1].pk}


@pytest.mark.parametrize("term", ["4b2f09a1-5c3e-4d7a-9f10-aa01bb02cc03", "4b2f09a1", "sqs-7788", "carol"])
def test_it_finds_entries_by_message_id_whole_or_its_start_and_by_actor(admin_client, entries, term):
    expected = entries[1] if term == "carol" else entries[0]

    assert listed(admin_client, q=term) == {expected.pk}


def test_an_entry_s_page_links_each_message_id_to_the_messages(admin_client, entries):
    response = admin_client.get(f"{AUDIT}{entries[0].pk}/change/")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'href="/admin/sqs_app/message/?q=sqs-7788"' in html
    assert 'href="/admin/sqs_app/message/?q=4b2f09a1-5c3e-4d7a-9f10-aa01bb02cc03"' in html


def test_the_log_cannot_be_added_to_edited_or_deleted(admin_client, entries):
    replay = entries[0]

    assert admin_client.get(f"{AUDIT}add/").status_code == 403
    assert admin_client.post(f"{AUDIT}{replay.pk}/change/", {"actor": "someone else"}).status_code == 403
    assert admin_client.post(f"{AUDIT}{replay.pk}/delete/", {"post": "yes"}).status_code == 403
    response = admin_client.post(
        AUDIT, {"action": "delete_selected", "_selected_action": [replay.pk], "index": 0}
    )
    assert response.status_code == 403
    assert AuditEntry.objects.get(pk=replay.pk).actor == "admin"


def test_a_viewer_reads_the_audit_log(viewer_client, entries):
    assert listed(viewer_client) == {e.pk for e in entries}
