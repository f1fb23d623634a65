"""The API's operator actions (redrive, delete) are written to the audit log; the admin shows it read only."""

import pytest

from sqs_app.audit import audit_list, audit_record
from sqs_app.models import AuditEntry
from tests.commands.conftest import dead_lettered
from tests.helpers import send

from .test_receive_and_delete import delete

pytestmark = pytest.mark.django_db


def test_an_api_redrive_is_audited_with_the_user_and_the_new_ids(api_client, user, boto_sqs):
    dead_lettered("first")

    body = api_client.post("/sqs/dlq/notifications/redrive", {}, format="json").json()

    entry = AuditEntry.objects.get()
    assert (entry.action, entry.via, entry.actor, entry.user) == ("redrive", "api", "alice", user)
    assert entry.queue == "notifications"
    assert entry.message_ids == [m["message_id"] for m in body["messages"]]
    assert entry.count == 1


def test_an_api_delete_is_audited(api_client, user, sqs):
    message_id = send(api_client, {"message": "x"}).json()["message_id"]
    [received] = api_client.get("/sqs/receive/default").json()["messages"]

    response = delete(api_client, received["receipt_handle"])

    assert response.status_code == 200
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.via, entry.user, entry.message_ids) == ("delete", "api", user, [message_id])


def test_a_single_api_send_is_not_repeated_in_the_audit_log(api_client, sqs):
    """Its history row names the sender and the source already."""
    send(api_client, {"message": "x"})

    assert not AuditEntry.objects.exists()


def test_audit_list_filters_by_action_queue_and_actor(db):
    audit_record(action="purge", via="command", actor="carol", queue="default", count=3)
    audit_record(action="redrive", via="api", actor="dave", queue="notifications")

    assert [e.actor for e in audit_list(action="purge")] == ["carol"]
    assert [e.actor for e in audit_list(queue="notifications")] == ["dave"]
    assert [e.action for e in audit_list(actor="carol")] == ["purge"]


def test_long_id_lists_are_cut_but_the_count_stays_exact(db):
    entry = audit_record(
        action="redrive", via="command", actor="carol", message_ids=[str(n) for n in range(600)]
    )

    assert len(entry.message_ids) == 500
    assert entry.count == 600
    assert entry.detail == {"message_ids_truncated": 100}


def test_the_admin_lists_the_audit_log_and_allows_no_changes(client, staff):
    entry = audit_record(action="purge", via="command", actor="carol", queue="default", count=3)
    client.force_login(staff)

    listing = client.get("/admin/sqs_app/auditentry/?action__exact=purge")
    add = client.get("/admin/sqs_app/auditentry/add/")
    delete = client.post(f"/admin/sqs_app/auditentry/{entry.pk}/delete/", {"post": "yes"})

    assert listing.status_code == 200
    assert b"carol" in listing.content
    assert add.status_code == 403
    assert delete.status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk).exists()
