"""Send: a form per task type, made from the API's schemas, with every error beside its field."""

import json
import uuid

import pytest

from sqs_app.models import Message, MessageStatus
from sqs_app.schemas import TASK_DATA_SCHEMAS
from tests.admin.conftest import grant
from tests.helpers import drain, message_count, notification

pytestmark = pytest.mark.django_db

SEND = "/admin/sqs_app/message/send/"


def form_of(response):
    return response.context["form"]


@pytest.mark.parametrize("kind", ["notification", "processing", "data_polling"])
def test_each_task_type_gets_the_fields_of_its_schema(admin_client, sqs_untouched, kind):
    response = admin_client.get(SEND, {"type": kind})

    assert response.status_code == 200
    fields = form_of(response).fields
    schema_fields = set(TASK_DATA_SCHEMAS[kind]().fields)
    assert {name.removeprefix("data__") for name in fields if name.startswith("data__")} == schema_fields
    assert {
        "queue_name",
        "id",
        "message",
        "priority",
        "correlation_id",
        "attributes",
        "delay_seconds",
    } <= set(fields)


def test_choices_and_required_marks_follow_the_schema(admin_client, sqs_untouched):
    response = admin_client.get(SEND, {"type": "notification"})

    fields = form_of(response).fields
    choices = [value for value, _ in fields["data__notification_type"].choices]
    assert choices == ["email", "sms", "push", "webhook"]
    assert fields["data__recipient"].schema_required is True
    assert fields["data__subject"].schema_required is False
    assert 'for="id_data__recipient">Recipient *<' in response.content.decode()


def test_a_plain_message_and_raw_json_have_their_own_forms(admin_client, sqs_untouched):
    plain = form_of(admin_client.get(SEND, {"type": "plain"})).fields
    raw = form_of(admin_client.get(SEND, {"type": "raw"})).fields

    assert not any(name.startswith("data__") for name in plain)
    assert set(raw) == {"queue_name", "message", "attributes", "delay_seconds"}


def test_the_notification_form_sends_to_sqs_and_links_to_the_new_message(admin_client, boto_sqs, staff):
    response = admin_client.post(
        f"{SEND}?type=notification",
        {
            "queue_name": "notifications",
            "message": "Tell Alice",
            "priority": "high",
            "correlation_id": "order-1",
            "data__recipient": "alice@example.com",
            "data__notification_type": "email",
            "data__subject": "Your export",
            "data__body": "It is ready.",
            "data__metadata": '{"export_id": 7}',
            "attributes": '{"tenant": "acme"}',
        },
        follow=True,
    )

    record = Message.objects.get()
    assert response.redirect_chain == [(f"/admin/sqs_app/message/{record.pk}/change/", 302)]
    [shown] = [str(m) for m in response.context["messages"]]
    assert f'href="/admin/sqs_app/message/{record.pk}/change/"' in shown
    assert shown.startswith("Sent message") and record.sqs_message_id in shown
    [delivered] = drain(boto_sqs, "notifications")
    body = json.loads(delivered["Body"])
    assert body["task_type"] == "notification"
    assert body["data"] == {
        "recipient": "alice@example.com",
        "notification_type": "email",
        "subject": "Your export",
        "body": "It is ready.",
        "metadata": {"export_id": 7},
    }
    assert (body["priority"], body["correlation_id"], body["source"]) == ("high", "order-1", "manual")
    assert delivered["MessageAttributes"]["tenant"]["StringValue"] == "acme"
    assert (record.sent_by, record.status) == (staff, MessageStatus.SENT)


def test_processing_and_polling_forms_send_their_task_data(admin_client, boto_sqs):
    admin_client.post(
        f"{SEND}?type=processing",
        {
            "queue_name": "task_processing",
            "data__operation": "aggregation",
            "data__input_data": '[{"pts": 1}, {"pts": 2}]',
            "data__output_format": "json",
        },
    )
    admin_client.post(
        f"{SEND}?type=data_polling",
        {
            "queue_name": "data_polling",
            "data__source_url": "https://example.com/feed.json",
            "data__poll_interval": "60",
        },
    )

    [processing] = drain(boto_sqs, "task_processing")
    [polling] = drain(boto_sqs, "data_polling")
    assert json.loads(processing["Body"])["data"]["input_data"] == [{"pts": 1}, {"pts": 2}]
    assert json.loads(polling["Body"])["data"]["poll_interval"] == 60


def test_delay_seconds_keeps_the_message_invisible(admin_client, boto_sqs):
    admin_client.post(
        f"{SEND}?type=plain", {"queue_name": "default", "message": "later", "delay_seconds": "120"}
    )

    url = boto_sqs.get_queue_url(QueueName="wipsie-default")["QueueUrl"]
    attributes = boto_sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"
    assert drain(boto_sqs, "default") == []


def test_every_error_is_shown_at_once_beside_its_field_and_nothing_is_sent(admin_client, boto_sqs):
    response = admin_client.post(
        f"{SEND}?type=notification",
        {
            "queue_name": "notifications",
            "priority": "urgent",
            "correlation_id": "x" * 129,
            "data__notification_type": "carrier-pigeon",
            "data__metadata": "{not json",
            "attributes": '{"AWS.reserved": "no"}',
        },
    )

    assert response.status_code == 200
    errors = form_of(response).errors
    assert set(errors) == {
        "priority",
        "correlation_id",
        "data__notification_type",
        "data__recipient",
        "data__body",
        "data__metadata",
        "attributes",
    }
    assert errors["data__metadata"][0].startswith("Not valid JSON")
    assert errors["data__recipient"] == ["This field is required."]
    content = response.content.decode()
    assert 'class="wipsie-form-row field-data__recipient"' in content
    assert message_count(boto_sqs, "notifications") == 0
    assert Message.objects.count() == 0


def test_raw_json_is_validated_like_the_api(admin_client, boto_sqs):
    no_recipient = notification()
    del no_recipient["data"]["recipient"]

    bad_json = admin_client.post(
        f"{SEND}?type=raw", {"queue_name": "notifications", "message": '{"task_type": '}
    )
    invalid = admin_client.post(
        f"{SEND}?type=raw", {"queue_name": "notifications", "message": json.dumps(no_recipient)}
    )

    assert form_of(bad_json).errors["message"][0].startswith("Not valid JSON")
    assert form_of(invalid).errors["message"] == ["message.data.recipient: This field is required."]
    assert message_count(boto_sqs, "notifications") == 0


def test_a_raw_message_is_sent_as_typed(admin_client, boto_sqs):
    admin_client.post(
        f"{SEND}?type=raw", {"queue_name": "notifications", "message": json.dumps(notification())}
    )

    [delivered] = drain(boto_sqs, "notifications")
    assert json.loads(delivered["Body"])["data"]["recipient"] == "alice@example.com"


def test_resending_an_id_already_sent_says_so_and_sends_nothing(admin_client, boto_sqs):
    chosen = str(uuid.uuid4())
    fields = {
        "queue_name": "notifications",
        "id": chosen,
        "data__recipient": "alice@example.com",
        "data__notification_type": "email",
        "data__body": "first",
    }
    admin_client.post(f"{SEND}?type=notification", fields, follow=True)

    again = admin_client.post(f"{SEND}?type=notification", {**fields, "data__body": "edited"})

    assert again.status_code == 200
    [error] = form_of(again).errors["id"]
    assert "already sent" in error and "nothing was sent" in error
    assert not [m for m in again.context["messages"] if str(m).startswith("Sent")]
    assert form_of(again)["data__body"].value() == "edited"  # the edit is kept
    assert len(drain(boto_sqs, "notifications")) == 1
    assert Message.objects.count() == 1


def test_a_viewer_cannot_open_the_send_page_or_post_to_it(viewer_client, boto_sqs):
    get = viewer_client.get(SEND)
    post = viewer_client.post(
        f"{SEND}?type=raw", {"queue_name": "notifications", "message": json.dumps(notification())}
    )

    assert get.status_code == post.status_code == 403
    assert message_count(boto_sqs, "notifications") == 0


def test_sending_needs_the_send_permission_and_nothing_more(client, django_user_model, boto_sqs):
    sender = django_user_model.objects.create_user("sid", password="pw-123456789", is_staff=True)
    grant(sender, "sqs_app.send_message", "sqs_app.view_message")
    client.force_login(sender)

    response = client.post(
        f"{SEND}?type=raw", {"queue_name": "notifications", "message": json.dumps(notification())}
    )

    assert response.status_code == 302
    assert message_count(boto_sqs, "notifications") == 1


def test_a_sender_limited_to_one_queue_is_refused_the_others(client, django_user_model, boto_sqs):
    from django.contrib.auth.models import Group

    from sqs_app.models import QueueGrant

    sender = django_user_model.objects.create_user("quinn", password="pw-123456789", is_staff=True)
    grant(sender, "sqs_app.send_message", "sqs_app.view_message")
    group = Group.objects.create(name="notifiers")
    QueueGrant.objects.create(group=group, queue="notifications")
    sender.groups.add(group)
    client.force_login(sender)
    message = json.dumps(notification())

    refused = client.post(f"{SEND}?type=raw", {"queue_name": "default", "message": message})
    allowed = client.post(f"{SEND}?type=raw", {"queue_name": "notifications", "message": message})

    assert refused.status_code == 403
    assert allowed.status_code == 302
    assert message_count(boto_sqs, "default") == 0
    assert message_count(boto_sqs, "notifications") == 1
