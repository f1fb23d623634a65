"""The operator's whole story in headless Chromium, with a real Celery worker doing the work.

The other browser tests record a worker's outcome in-process; here nothing is
simulated: the message sent from the form goes through SQS to a real
`celery -A wipsie_site worker`, which calls a local webhook receiver, and the
trace page shows what that worker recorded. A webhook that answers 404 is a
permanent failure: the worker dead-letters it, the operator finds it on its DLQ
page, replays it after fixing its recipient, and the worker delivers the replay.
"""

import pytest

from sqs_app.models import Message, MessageStatus
from tests.browser.test_admin_in_a_browser import fill
from tests.e2e.conftest import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.timeout(240)]


def send_webhook_from_the_form(pages, *, recipient: str, subject: str) -> Message:
    pages.open("/admin/sqs_app/message/send/?type=notification")
    fill(pages, "queue_name", "notifications")
    fill(pages, "data__recipient", recipient)
    fill(pages, "data__notification_type", "webhook")
    fill(pages, "data__subject", subject)
    fill(pages, "data__body", "sent from the console")
    pages.press(pages.find('button[name="_send"]'))
    record = Message.objects.get(body__data__subject=subject)
    assert pages.path == f"/admin/sqs_app/message/{record.pk}/change/", pages.text()
    return record


def outcome_shown(pages, record: Message, expected: str) -> bool:
    """Reload the trace page until it shows `expected` (the worker works beside the browser)."""
    pages.open(f"/admin/sqs_app/message/{record.pk}/change/")
    shown = pages.find_all("#trace-outcome")  # with the task result, once the worker wrote it
    return bool(shown) and shown[0].text == expected


def test_a_message_sent_from_the_console_is_processed_by_a_worker_then_a_dead_letter_is_replayed(
    sqs, start_worker, peer, signed_in
):
    peer.routes["/gone"] = (404, b'{"error": "no such hook"}', 0.0)
    start_worker("-Q", "notifications")

    delivered = send_webhook_from_the_form(signed_in, recipient=f"{peer.url}/hook", subject="Deploy done")
    wait_until(lambda: outcome_shown(signed_in, delivered, "Succeeded"), timeout=60)
    assert "HTTP status\n200" in signed_in.find("#trace-side-effect").text
    assert [r["path"] for r in peer.requests] == ["/hook"]

    refused = send_webhook_from_the_form(signed_in, recipient=f"{peer.url}/gone", subject="Invoice paid")
    wait_until(lambda: outcome_shown(signed_in, refused, "Failed"), timeout=60)

    signed_in.open("/admin/sqs_app/message/dead-letters/notifications/")
    [row] = signed_in.find_all("#dead-letters tr.dead-letter")
    assert "404" in row.find_element("css selector", ".dead-letter-error").text
    signed_in.press(row.find_element("css selector", "a.dead-letter-history"))
    signed_in.press(signed_in.find("#replay-link"))
    fill(signed_in, "data__recipient", f"{peer.url}/hook")
    signed_in.press(signed_in.find('button[name="_replay"]'))

    replay = Message.objects.get(replay_of=refused)
    wait_until(lambda: outcome_shown(signed_in, replay, "Succeeded"), timeout=60)
    assert [r["path"] for r in peer.requests] == ["/hook", "/gone", "/hook"]
    signed_in.press(signed_in.find("#trace-replay-of"))
    assert signed_in.path == f"/admin/sqs_app/message/{refused.pk}/change/"
    refused.refresh_from_db()
    assert refused.status == MessageStatus.FAILED  # the original keeps its own history
