"""Export of the filtered message list, streamed as CSV or JSON."""

import csv
import io
import json

import pytest
from django.http import StreamingHttpResponse

from sqs_app.models import Message, MessageStatus

pytestmark = pytest.mark.django_db

EXPORT = "/admin/sqs_app/message/export/"


def body_of(response) -> str:
    assert isinstance(response, StreamingHttpResponse), "the export must stream"
    return b"".join(response.streaming_content).decode()


@pytest.fixture
def history(staff):
    return [
        Message.objects.create(
            queue="notifications",
            body={"message": f"note {i}", "data": {"subject": 'Café, "quoted"'}},
            status=MessageStatus.FAILED if i % 2 else MessageStatus.SUCCEEDED,
            last_error="boom" if i % 2 else "",
            task_type="notification",
            sent_by=staff,
        )
        for i in range(5)
    ] + [Message.objects.create(queue="default", body="plain text body", status=MessageStatus.SENT)]


def test_csv_export_has_every_message_of_the_filtered_list(admin_client, history):
    response = admin_client.get(f"{EXPORT}csv/", {"queue__exact": "notifications", "status__exact": "failed"})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="wipsie-messages-')
    rows = list(csv.DictReader(io.StringIO(body_of(response))))
    assert sorted(int(r["id"]) for r in rows) == sorted(m.pk for m in history if m.status == "failed")
    assert {r["last_error"] for r in rows} == {"boom"}
    assert json.loads(rows[0]["body"])["data"]["subject"] == 'Café, "quoted"'
    assert rows[0]["sent_by"] == "admin"


def test_json_export_follows_the_search_too(admin_client, history):
    response = admin_client.get(f"{EXPORT}json/", {"q": "plain text"})

    exported = json.loads(body_of(response))
    assert [m["id"] for m in exported] == [history[-1].pk]
    assert exported[0]["body"] == "plain text body"


def test_an_empty_list_exports_an_empty_array_and_a_header(admin_client):
    assert json.loads(body_of(admin_client.get(f"{EXPORT}json/"))) == []
    assert body_of(admin_client.get(f"{EXPORT}csv/")).splitlines()[0].startswith("id,sqs_message_id")


def test_the_export_reads_the_rows_in_chunks_not_all_at_once(admin_client, history, monkeypatch):
    from django.db.models.query import QuerySet

    chunk_sizes = []
    original = QuerySet.iterator

    def recording_iterator(self, chunk_size=None):
        chunk_sizes.append(chunk_size)
        return original(self, chunk_size=chunk_size)

    monkeypatch.setattr(QuerySet, "iterator", recording_iterator)

    response = admin_client.get(f"{EXPORT}csv/")
    assert chunk_sizes == []  # nothing read before the response starts streaming
    body_of(response)

    assert chunk_sizes == [2000]


def test_the_list_links_to_the_export_with_its_filters(admin_client, history):
    response = admin_client.get("/admin/sqs_app/message/", {"queue__exact": "default"})

    content = response.content.decode()
    assert f'href="{EXPORT}csv/?queue__exact=default"' in content
    assert f'href="{EXPORT}json/?queue__exact=default"' in content


def test_an_unknown_format_is_a_404_and_a_user_without_view_permission_gets_403(
    admin_client, client, django_user_model
):
    nobody = django_user_model.objects.create_user("nora", password="pw-123456789", is_staff=True)

    assert admin_client.get(f"{EXPORT}xml/").status_code == 404
    client.force_login(nobody)
    assert client.get(f"{EXPORT}csv/").status_code == 403


def test_without_view_all_the_export_has_only_the_users_own_messages(client, django_user_model, history):
    from tests.admin.conftest import grant

    sender = django_user_model.objects.create_user("sam", password="pw-123456789", is_staff=True)
    grant(sender, "sqs_app.view_message")
    own = Message.objects.create(queue="default", body={}, sent_by=sender)
    client.force_login(sender)

    exported = json.loads(body_of(client.get(f"{EXPORT}json/")))

    assert [m["id"] for m in exported] == [own.pk]
