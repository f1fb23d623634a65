"""A staff member in the admin, in headless Chromium, on the live server and a real moto SQS.

Every test asks for `sqs` (fresh queues on the moto server the live server
talks to) and checks what really is in SQS with a plain boto3 client.
"""

import json
import shutil

import pytest
from selenium.webdriver.support.ui import Select

from sqs_app import services
from sqs_app.models import EventKind, Message, MessageStatus
from sqs_app.queues import queue_spec
from tasks_app import lifecycle
from tasks_app.models import PollSchedule
from tests.helpers import recurring_poll, worker_claim

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

REPLAY_ACTION = "Replay the selected messages from their dead-letter queue"
STOP_ACTION = "Stop the selected recurring polls"
MIN_SCREENSHOT_BYTES = 10 * 1024
QUEUES_SCREENSHOT_FOR_THE_LEAD = "/tmp/wipsie-admin-queues.png"


def notification(**data) -> dict:
    return {
        "task_type": "notification",
        "priority": "high",
        "data": {
            "recipient": "https://example.com/hook",
            "notification_type": "webhook",
            "subject": "Deploy finished",
            "body": "wipsie 0.1.0 is live",
            **data,
        },
    }


def queue_url(boto_sqs, logical_name: str, *, dlq: bool = False) -> str:
    spec = queue_spec(logical_name)
    return boto_sqs.get_queue_url(QueueName=spec.dlq_name if dlq else spec.physical_name)["QueueUrl"]


def take_all(boto_sqs, url: str) -> list[dict]:
    """Receive (and delete) everything in a queue, as a consumer would."""
    taken = []
    while batch := boto_sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in batch:
            boto_sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        taken += batch
    return taken


def test_a_staff_member_logs_in_and_sees_messages_and_poll_schedules_on_the_admin_index(
    sqs, staff, admin_pages
):
    admin_pages.open("/admin/")
    assert admin_pages.path.startswith("/admin/login/"), "the admin must ask for a login first"

    admin_pages.find("#id_username").send_keys("admin")
    admin_pages.find("#id_password").send_keys("admin-pass-123")
    admin_pages.press(admin_pages.find('#login-form input[type="submit"]'))

    assert admin_pages.path == "/admin/"
    assert "Site administration" in admin_pages.driver.title
    assert "ADMIN" in admin_pages.find("#user-tools").text.upper()
    links = {a.text: a.get_attribute("href") for a in admin_pages.find_all("#content-main a")}
    assert links["Messages"].endswith("/admin/sqs_app/message/")
    assert links["Poll schedules"].endswith("/admin/tasks_app/pollschedule/")


def test_sending_a_notification_from_the_admin_puts_it_in_the_queue_and_shows_it_as_sent(
    sqs, boto_sqs, signed_in
):
    signed_in.press(signed_in.link("Messages", within="#content-main"))
    signed_in.press(signed_in.link("Send a message"))
    assert signed_in.path == "/admin/sqs_app/message/send/"

    Select(signed_in.find("#id_queue_name")).select_by_value("notifications")
    signed_in.find("#id_message").send_keys(json.dumps(notification()))
    signed_in.press(signed_in.find('input[name="_send"]'))

    record = Message.objects.get()
    assert signed_in.path == f"/admin/sqs_app/message/{record.pk}/change/", signed_in.text()
    assert signed_in.messages() == [f"Sent message {record.sqs_message_id} to notifications."]
    assert signed_in.readonly_field("status").lower() == "sent"
    assert signed_in.readonly_field("queue") == "notifications"
    assert record.status == MessageStatus.SENT
    assert record.source == "manual"
    assert record.sent_by.username == "admin"

    in_sqs = take_all(boto_sqs, queue_url(boto_sqs, "notifications"))
    assert [m["MessageId"] for m in in_sqs] == [record.sqs_message_id]
    body = json.loads(in_sqs[0]["Body"])
    assert body["id"] == str(record.standard_id)
    assert body["task_type"] == "notification"
    assert body["data"]["recipient"] == "https://example.com/hook"
    assert body["source"] == "manual"


def test_invalid_json_and_an_invalid_notification_show_their_errors_and_send_nothing(
    sqs, boto_sqs, signed_in
):
    signed_in.open("/admin/sqs_app/message/send/")
    Select(signed_in.find("#id_queue_name")).select_by_value("notifications")
    signed_in.find("#id_message").send_keys('{"task_type": "notification", "data": ')
    signed_in.press(signed_in.find('input[name="_send"]'))

    assert signed_in.path == "/admin/sqs_app/message/send/"
    [error] = signed_in.errors()
    assert error.startswith("Not valid JSON:"), error

    no_recipient = notification()
    del no_recipient["data"]["recipient"]
    message_box = signed_in.find("#id_message")
    message_box.clear()
    message_box.send_keys(json.dumps(no_recipient))
    signed_in.press(signed_in.find('input[name="_send"]'))

    assert signed_in.path == "/admin/sqs_app/message/send/"
    assert signed_in.errors() == ["message.data.recipient: This field is required."]
    # What was typed is still there to correct.
    assert json.loads(signed_in.find("#id_message").get_attribute("value")) == no_recipient

    assert Message.objects.count() == 0
    assert take_all(boto_sqs, queue_url(boto_sqs, "notifications")) == []


def test_the_queues_page_counts_a_dead_letter_and_redrives_it_back_to_its_queue(sqs, boto_sqs, signed_in):
    def rows() -> dict[str, list[str]]:
        return {
            row.find_elements("css selector", "td")[0].text: [
                cell.text for cell in row.find_elements("css selector", "td")[1:5]
            ]
            for row in signed_in.find_all("#queue-table tbody tr")
        }

    signed_in.open("/admin/sqs_app/message/")
    signed_in.press(signed_in.link("Queues", within="#content .object-tools"))
    assert signed_in.path == "/admin/sqs_app/message/queues/"
    # Queue: visible, in flight, delayed, dead letters.
    assert rows() == {
        "default": ["0", "0", "0", "0"],
        "data_polling": ["0", "0", "0", "0"],
        "task_processing": ["0", "0", "0", "0"],
        "notifications": ["0", "0", "0", "0"],
        "celery": ["0", "0", "0", "0"],  # Wipsie's own task queue (selectors.queue_overview)
    }
    assert signed_in.find_all('input[value="Redrive dead letters"]') == []

    boto_sqs.send_message(QueueUrl=queue_url(boto_sqs, "default", dlq=True), MessageBody="left for dead")
    signed_in.open("/admin/sqs_app/message/queues/")
    assert rows()["default"] == ["0", "0", "0", "1"]
    assert [b.get_attribute("name") for b in signed_in.find_all('input[value="Redrive dead letters"]')] == [
        "redrive-default"
    ]

    signed_in.press(signed_in.find('input[name="redrive-default"]'))

    assert signed_in.path == "/admin/sqs_app/message/queues/"
    assert signed_in.messages() == ["Redrove 1 message(s) from the default DLQ."]
    assert rows()["default"] == ["1", "0", "0", "0"]
    assert [m["Body"] for m in take_all(boto_sqs, queue_url(boto_sqs, "default"))] == ["left for dead"]
    assert take_all(boto_sqs, queue_url(boto_sqs, "default", dlq=True)) == []


def test_replaying_a_failed_message_from_the_changelist_sends_it_again_and_records_the_replay(
    sqs, boto_sqs, staff, signed_in
):
    failed = services.message_send(queue="notifications", message=notification(), sent_by=staff).record
    untouched = services.message_send(queue="notifications", message=notification(subject="ok")).record
    # A worker took both off the queue; the first one failed for good, into the DLQ.
    taken = take_all(boto_sqs, queue_url(boto_sqs, "notifications"))
    assert len(taken) == 2
    [raw] = [m for m in taken if json.loads(m["Body"])["id"] == str(failed.standard_id)]
    claim = worker_claim(queue="notifications", raw_body=raw["Body"], sqs_message_id=raw["MessageId"])
    lifecycle.message_failed(claim, error="webhook answered 500")

    signed_in.open("/admin/sqs_app/message/")
    assert signed_in.row_of(failed.pk).find_element("css selector", "td.field-status_badge").text == "failed"
    signed_in.run_action(REPLAY_ACTION, on=[failed.pk])

    assert signed_in.path == "/admin/sqs_app/message/"
    assert signed_in.messages() == ["Replayed 1 message(s)."]
    assert signed_in.row_of(failed.pk).find_element("css selector", "td.field-status_badge").text == "sent"
    assert signed_in.row_of(untouched.pk).find_element("css selector", "td.field-status_badge").text == "sent"

    signed_in.open(f"/admin/sqs_app/message/{failed.pk}/change/")
    assert signed_in.readonly_field("status").lower() == "sent"
    events = [cell.text for cell in signed_in.find_all("td.field-kind")]
    assert "Replayed" in events, events

    failed.refresh_from_db()
    assert failed.status == MessageStatus.SENT
    assert failed.events.filter(kind=EventKind.REPLAYED, actor="admin").exists()
    [back] = take_all(boto_sqs, queue_url(boto_sqs, "notifications"))
    assert back["MessageId"] == failed.sqs_message_id
    assert json.loads(back["Body"])["id"] == str(failed.standard_id)
    assert "last_error" not in json.loads(back["Body"])
    assert take_all(boto_sqs, queue_url(boto_sqs, "notifications", dlq=True)) == []


def test_stopping_a_recurring_poll_from_the_poll_schedules_list_makes_it_inactive(sqs, signed_in):
    stopping = recurring_poll(source_url="https://example.com/feed", interval_seconds=60)
    staying = recurring_poll(source_url="https://example.com/other", interval_seconds=300)

    def active_icon(schedule) -> str:
        return (
            signed_in.row_of(schedule.pk)
            .find_element("css selector", "td.field-is_active img")
            .get_attribute("alt")
        )

    signed_in.press(signed_in.link("Poll schedules", within="#content-main"))
    assert signed_in.path == "/admin/tasks_app/pollschedule/"
    assert active_icon(stopping) == active_icon(staying) == "True"

    signed_in.run_action(STOP_ACTION, on=[stopping.pk])

    assert signed_in.path == "/admin/tasks_app/pollschedule/"
    assert signed_in.messages() == ["Stopped 1 poll(s)."]
    assert active_icon(stopping) == "False"
    assert active_icon(staying) == "True"
    stopping = PollSchedule.objects.get(pk=stopping.pk)
    staying = PollSchedule.objects.get(pk=staying.pk)
    assert (stopping.active, staying.active) == (False, True)
    assert stopping.stopped_at is not None


def test_screenshots_of_the_message_page_and_the_queues_page_are_real_styled_pngs(
    sqs, staff, signed_in, tmp_path
):
    record = services.message_send(queue="notifications", message=notification(), sent_by=staff).record
    shots = {}

    signed_in.open(f"/admin/sqs_app/message/{record.pk}/change/")
    # The admin's CSS is served (by the staticfiles app), so the page is styled, not bare HTML.
    header = signed_in.driver.execute_script(
        "return getComputedStyle(document.getElementById('header')).backgroundColor"
    )
    assert header not in ("", "transparent", "rgba(0, 0, 0, 0)"), header
    shots["message"] = tmp_path / "admin-message.png"
    assert signed_in.driver.save_screenshot(str(shots["message"]))

    signed_in.open("/admin/sqs_app/message/queues/")
    assert len(signed_in.find_all("#queue-table tbody tr")) == 5  # the four and celery
    shots["queues"] = tmp_path / "admin-queues.png"
    assert signed_in.driver.save_screenshot(str(shots["queues"]))

    for name, path in shots.items():
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n"), f"{name} is not a PNG"
        assert len(data) > MIN_SCREENSHOT_BYTES, f"{name} is only {len(data)} bytes"
    shutil.copyfile(shots["queues"], QUEUES_SCREENSHOT_FOR_THE_LEAD)
