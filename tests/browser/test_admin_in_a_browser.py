"""Operators in the admin, in headless Chromium, on the live server and a real moto SQS.

Every test asks for `sqs` (fresh queues on the moto server the live server
talks to) and checks what really is in SQS with a plain boto3 client. The
screenshots in docs/ (shown in the README) are taken here, with `make screenshots`.
"""

import json

import pytest
from django_celery_results.models import TaskResult
from selenium.webdriver.support.ui import Select

from sqs_app import services
from sqs_app.models import Message, MessageStatus
from sqs_app.queues import queue_spec
from tasks_app import lifecycle
from tests.admin.conftest import VIEWER_PERMISSIONS, grant, worker_took
from tests.browser.conftest import SCREENSHOTS, link_text

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

MIN_SCREENSHOT_BYTES = 10 * 1024
SIDEBAR = [
    "Dashboard",
    "Queues",
    "Messages",
    "Dead letters",
    "Send",
    "Recurring polls",
    "Operator runs",
    "Task results",
    "Audit log",
    "Users",
    "Groups",
]


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


def worker_delivers(record: Message, *, status_code: int = 200) -> None:
    """What a worker records when it delivered the webhook: the claim, the task result, success."""
    claim = worker_took(record)
    TaskResult.objects.create(
        task_id=Message.objects.get(pk=claim.pk).celery_task_id,
        task_name="notification",
        status="SUCCESS",
        result=json.dumps(
            {
                "notification_type": "webhook",
                "recipient": record.body["data"]["recipient"],
                "status_code": status_code,
            }
        ),
    )
    lifecycle.message_succeeded(claim)


def fill(pages, name: str, value: str) -> None:
    element = pages.find(f"#id_{name}")
    if element.tag_name == "select":
        Select(element).select_by_value(value)
    else:
        element.clear()
        element.send_keys(value)


def test_the_dashboard_shows_every_queue_and_the_sidebar_leads_to_each_page(sqs, boto_sqs, staff, signed_in):
    services.message_send(queue="notifications", message=notification(), sent_by=staff)
    boto_sqs.send_message(QueueUrl=queue_url(boto_sqs, "default", dlq=True), MessageBody="left for dead")
    signed_in.open("/admin/")

    sidebar = {link_text(a): a.get_attribute("href") for a in signed_in.find_all("#nav-sidebar a")}
    assert [title for title in sidebar if title in SIDEBAR] == SIDEBAR, sidebar
    depths = {
        row.get_attribute("data-queue"): [cell.text for cell in row.find_elements("css selector", "td")[1:5]]
        for row in signed_in.find_all("#queue-depths tbody tr")
    }
    assert depths["notifications"] == ["1", "0", "0", "0"]
    assert depths["default"] == ["0", "0", "0", "1"]
    sent_last_hour = signed_in.find('#activity-hour tr[data-queue="notifications"] a[data-figure="sent"]')
    assert sent_last_hour.text == "1"
    assert signed_in.find("#throughput canvas.chart").is_displayed()

    data = signed_in.screenshot(SCREENSHOTS / "admin-dashboard.png")
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > MIN_SCREENSHOT_BYTES
    assert signed_in.page_width_at(400) <= 420, "the dashboard must fit a 400 px screen"

    signed_in.press(sent_last_hour)
    assert len(signed_in.find_all("#result_list tbody tr")) == 1
    for title in ("Queues", "Send", "Task results", "Audit log", "Users"):
        signed_in.open(sidebar[title].removeprefix(signed_in.base_url))
        assert "Server Error" not in signed_in.text() and "Not Found" not in signed_in.text(), title


def test_an_operator_sends_a_notification_finds_it_by_correlation_id_and_body_and_reads_its_trace(
    sqs, boto_sqs, signed_in
):
    signed_in.open("/admin/")
    signed_in.press(signed_in.link("Send", within="#nav-sidebar"))
    assert signed_in.path == "/admin/sqs_app/message/send/"
    fill(signed_in, "queue_name", "notifications")
    fill(signed_in, "priority", "high")
    fill(signed_in, "correlation_id", "order-4711")
    fill(signed_in, "message", "Tell the team")
    fill(signed_in, "data__recipient", "https://example.com/hook")
    fill(signed_in, "data__notification_type", "webhook")
    fill(signed_in, "data__subject", "Deploy finished")
    fill(signed_in, "data__body", "the marmalade release is live")
    fill(signed_in, "attributes", '{"tenant": "acme"}')
    signed_in.press(signed_in.find('button[name="_send"]'))

    record = Message.objects.get()
    assert signed_in.path == f"/admin/sqs_app/message/{record.pk}/change/", signed_in.text()
    assert signed_in.messages() == [f"Sent message {record.sqs_message_id} to notifications."]
    [in_sqs] = take_all(boto_sqs, queue_url(boto_sqs, "notifications"))
    assert in_sqs["MessageId"] == record.sqs_message_id
    assert json.loads(in_sqs["Body"])["data"]["body"] == "the marmalade release is live"
    assert record.source == "manual" and record.sent_by.username == "admin"

    record.refresh_from_db()
    worker_delivers(record)

    signed_in.open("/admin/sqs_app/message/")
    signed_in.search("order-4711")
    assert [r.get_attribute("value") for r in signed_in.find_all("input.action-select")] == [str(record.pk)]
    signed_in.search("marmalade")
    assert [r.get_attribute("value") for r in signed_in.find_all("input.action-select")] == [str(record.pk)]
    signed_in.search("no-such-word")
    assert signed_in.find_all("input.action-select") == []

    signed_in.search("marmalade")
    signed_in.press(signed_in.find("#result_list tbody a"))
    assert signed_in.path.startswith(f"/admin/sqs_app/message/{record.pk}/change/")
    body = signed_in.find("#trace-body").text
    assert json.loads(body)["data"]["body"] == "the marmalade release is live"
    assert '\n  "data": {' in body, "the body is pretty-printed"
    assert signed_in.find("#trace-outcome").text == "Succeeded"
    assert signed_in.find("#trace-celery-state").text == "SUCCESS"
    kinds = [row.find_elements("css selector", "td")[1].text for row in signed_in.find_all(".trace-event")]
    assert kinds == ["Sent", "Received", "Processing", "Succeeded"]
    assert "HTTP status\n200" in signed_in.find("#trace-side-effect").text

    data = signed_in.screenshot(SCREENSHOTS / "admin-message-trace.png")
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > MIN_SCREENSHOT_BYTES
    assert signed_in.page_width_at(400) <= 420, "the trace page must fit a 400 px screen"


def test_invalid_fields_are_all_shown_beside_their_fields_and_nothing_is_sent(sqs, boto_sqs, signed_in):
    signed_in.open("/admin/sqs_app/message/send/?type=notification")
    fill(signed_in, "queue_name", "notifications")
    fill(signed_in, "data__notification_type", "email")
    fill(signed_in, "data__recipient", "not-an-address")
    fill(signed_in, "data__body", "Hello")
    fill(signed_in, "correlation_id", "x" * 129)
    fill(signed_in, "attributes", '{"AWS.reserved": "no"}')
    signed_in.press(signed_in.find('button[name="_send"]'))

    assert signed_in.path == "/admin/sqs_app/message/send/?type=notification"
    assert signed_in.errors("data__recipient") == ["Enter a valid email address."]
    assert signed_in.errors("correlation_id") == ["Ensure this field has no more than 128 characters."]
    assert len(signed_in.errors("attributes")) == 1
    assert signed_in.find("#id_data__recipient").get_attribute("value") == "not-an-address"
    assert Message.objects.count() == 0
    assert take_all(boto_sqs, queue_url(boto_sqs, "notifications")) == []


def test_an_operator_finds_a_dead_letter_on_its_dlq_page_and_replays_it_edited(
    sqs, boto_sqs, staff, signed_in
):
    others = [
        services.message_send(queue="notifications", message=notification(subject=s), sent_by=staff).record
        for s in ("Nightly export ready", "Invoice 1042 paid")
    ]
    failed = services.message_send(queue="notifications", message=notification(), sent_by=staff).record
    assert len(take_all(boto_sqs, queue_url(boto_sqs, "notifications"))) == 3
    for other, error in zip(
        others, ["webhook answered 404: no such hook", "connection refused"], strict=True
    ):
        lifecycle.message_failed(worker_took(other), error=error)
    lifecycle.message_failed(worker_took(failed), error="webhook answered 500")

    signed_in.open("/admin/")
    signed_in.press(signed_in.link("Dead letters", within="#nav-sidebar"))
    assert signed_in.path == "/admin/sqs_app/message/dead-letters/"
    signed_in.press(signed_in.link("notifications"))
    assert signed_in.path == "/admin/sqs_app/message/dead-letters/notifications/"
    assert len(signed_in.find_all("#dead-letters tr.dead-letter")) == 3
    history_link = signed_in.find(
        f'#dead-letters a.dead-letter-history[href$="/message/{failed.pk}/change/"]'
    )
    row = history_link.find_element("xpath", "./ancestor::tr")
    assert "webhook answered 500" in row.find_element("css selector", ".dead-letter-error").text
    data = signed_in.screenshot(SCREENSHOTS / "admin-dead-letters.png")
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > MIN_SCREENSHOT_BYTES
    assert signed_in.page_width_at(400) <= 420, "the DLQ page must fit a 400 px screen"

    signed_in.press(history_link)
    assert signed_in.path == f"/admin/sqs_app/message/{failed.pk}/change/"
    signed_in.press(signed_in.find("#replay-link"))
    assert signed_in.find("#id_data__subject").get_attribute("value") == "Deploy finished"
    fill(signed_in, "data__subject", "Deploy finished, again")
    fill(signed_in, "data__recipient", "not a url")  # a mistake first: shown beside the field, edit kept
    signed_in.press(signed_in.find('button[name="_replay"]'))
    assert signed_in.errors("data__recipient"), signed_in.text()
    assert signed_in.find("#id_data__subject").get_attribute("value") == "Deploy finished, again"
    assert take_all(boto_sqs, queue_url(boto_sqs, "notifications")) == []
    fill(signed_in, "data__recipient", "https://example.com/hook")
    signed_in.press(signed_in.find('button[name="_replay"]'))

    replay = Message.objects.get(replay_of=failed)
    assert signed_in.path == f"/admin/sqs_app/message/{replay.pk}/change/", signed_in.text()
    [sent] = take_all(boto_sqs, queue_url(boto_sqs, "notifications"))
    body = json.loads(sent["Body"])
    assert body["data"]["subject"] == "Deploy finished, again"
    assert body["replay_of"] == str(failed.standard_id) and body["id"] != str(failed.standard_id)
    signed_in.press(signed_in.find("#trace-replay-of"))
    assert signed_in.path == f"/admin/sqs_app/message/{failed.pk}/change/"
    failed.refresh_from_db()
    assert failed.status == MessageStatus.FAILED  # the original keeps its ids and history
    signed_in.press(signed_in.find("a.trace-replay"))
    assert signed_in.path == f"/admin/sqs_app/message/{replay.pk}/change/"


def test_a_viewer_sees_no_action_buttons_and_a_crafted_post_is_refused(
    sqs, boto_sqs, staff, django_user_model, admin_pages
):
    viewer = django_user_model.objects.create_user("vera", password="viewer-pass-123", is_staff=True)
    grant(viewer, *VIEWER_PERMISSIONS)
    failed = services.message_send(queue="notifications", message=notification(), sent_by=staff).record
    take_all(boto_sqs, queue_url(boto_sqs, "notifications"))
    lifecycle.message_failed(worker_took(failed), error="webhook answered 500")

    admin_pages.log_in("vera", "viewer-pass-123")
    admin_pages.open("/admin/sqs_app/message/")
    assert admin_pages.find_all(f'#result_list a[href*="/message/{failed.pk}/change/"]')
    assert admin_pages.find_all('select[name="action"]') == []
    assert admin_pages.find_all("#message-tools a[href$='/send/']") == []
    admin_pages.open(f"/admin/sqs_app/message/{failed.pk}/change/")
    assert admin_pages.find_all("#replay-form") == []
    admin_pages.open("/admin/sqs_app/message/queues/")
    assert admin_pages.find_all("a[id^='purge-']") == []
    admin_pages.open("/admin/sqs_app/message/dead-letters/notifications/")
    assert "webhook answered 500" in admin_pages.find("#dead-letters").text
    assert admin_pages.find_all("#dlq-tools button") == []
    assert admin_pages.find_all('input[name="ids"]') == []
    assert admin_pages.find_all("#purge-dlq") == []

    # The same POSTs the buttons would make, with the viewer's own CSRF token.
    statuses = admin_pages.driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const token = document.cookie.split('; ').find(c => c.startsWith('csrftoken=')).split('=')[1];
        const post = (url, fields) => fetch(url, {method: 'POST', credentials: 'same-origin',
            headers: {'X-CSRFToken': token}, body: new URLSearchParams(fields)}).then(r => r.status);
        Promise.all([
          post('/admin/sqs_app/message/',
               {action: 'replay', _selected_action: arguments[0], index: 0}),
          post('/admin/sqs_app/message/dead-letters/notifications/', {action: 'redrive_all'}),
          post('/admin/sqs_app/message/dead-letters/notifications/', {action: 'delete_selected', ids: 'x'}),
          post('/admin/sqs_app/message/' + arguments[0] + '/replay/?type=raw', {queue_name: 'notifications',
               message: JSON.stringify(arguments[1]), replay_id: '6a1f0c2e-1111-4a4a-9b9b-123456789abc'}),
          post('/admin/sqs_app/message/queues/notifications/purge/?dlq=1', {confirm: 'notifications'}),
          post('/admin/sqs_app/message/send/?type=raw', {queue_name: 'notifications',
               message: JSON.stringify(arguments[1])}),
        ]).then(done);
        """,
        failed.pk,
        notification(),
    )

    assert statuses == [403, 403, 403, 403, 403, 403]
    failed.refresh_from_db()
    assert failed.status == MessageStatus.FAILED
    assert Message.objects.count() == 1
    assert take_all(boto_sqs, queue_url(boto_sqs, "notifications")) == []
    assert len(take_all(boto_sqs, queue_url(boto_sqs, "notifications", dlq=True))) == 1
