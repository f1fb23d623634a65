"""Recurring polls by clicking, a viewer refused, and the message list's layout at 1400 and 400 px.

Headless Chromium on the live server and a real moto SQS, as in
test_admin_in_a_browser.py.
"""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from sqs_app import services
from sqs_app.models import AuditEntry, Message
from tasks_app import lifecycle
from tasks_app.models import PollResult, PollSchedule
from tests.admin.conftest import VIEWER_PERMISSIONS, grant, worker_took
from tests.browser.conftest import SCREENSHOTS
from tests.helpers import recurring_poll

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

POLLS = "/admin/tasks_app/pollschedule/"
MIN_SCREENSHOT_BYTES = 10 * 1024


def started_poll(staff) -> PollSchedule:
    """An active poll started by the admin's own message, with one result."""
    origin = Message.objects.create(
        queue="data_polling",
        body={},
        sent_by=staff,
        correlation_id="prices-feed",
        sqs_message_id="sqs-origin",
    )
    poll = recurring_poll(
        origin=origin, correlation_id="prices-feed", source_url="https://example.com/prices.json"
    )
    PollResult.objects.create(
        schedule=poll, source_url=poll.source_url, status_code=200, duration_ms=8, item_count=3
    )
    PollSchedule.objects.filter(pk=poll.pk).update(last_poll_time=timezone.now() - timedelta(minutes=5))
    return PollSchedule.objects.get(pk=poll.pk)


def row_cells(pages, poll: PollSchedule) -> dict[str, str]:
    """The poll's row in the list, by column (the header's class names them: column-<field>)."""
    row = pages.row_of(poll.pk)
    return {
        cell.get_attribute("class").split("field-")[-1].split()[0]: cell.text
        for cell in row.find_elements("css selector", "td[class*='field-'], th[class*='field-']")
    }


def hidden_columns_at(pages, width: int) -> list[str]:
    """The changelist's columns that do not fit its scroll box in a window `width` px wide."""
    pages.driver.set_window_size(width, 900)
    try:
        return pages.driver.execute_script(
            """
            const table = document.querySelector('#result_list');
            let box = table.parentElement;
            while (box && getComputedStyle(box).overflowX === 'visible') box = box.parentElement;
            const right = Math.min((box || document.documentElement).getBoundingClientRect().right,
                                   document.documentElement.clientWidth);
            return Array.from(table.querySelectorAll('thead th'))
              .filter(th => th.getBoundingClientRect().right > right + 1)
              .map(th => th.textContent.trim());
            """
        )
    finally:
        pages.driver.set_window_size(1280, 900)


def state_of(poll: PollSchedule) -> str:
    return PollSchedule.objects.select_related("periodic_task").get(pk=poll.pk).state


def test_an_operator_pauses_and_resumes_a_poll_and_opens_its_results(sqs, staff, signed_in):
    poll = started_poll(staff)

    signed_in.press(signed_in.link("Recurring polls", within="#nav-sidebar"))
    assert signed_in.path == POLLS
    cells = row_cells(signed_in, poll)
    assert cells["state_badge"].lower() == "active"
    assert cells["timing"].startswith("1 min · in "), cells
    assert cells["last_result"] == "5m ago · HTTP 200, 3 item(s)"
    assert cells["created_by"] == "admin"
    data = signed_in.screenshot(SCREENSHOTS / "admin-recurring-polls.png")
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > MIN_SCREENSHOT_BYTES
    assert hidden_columns_at(signed_in, 1400) == [], "every column of the polls page shows at 1400 px"
    assert signed_in.page_width_at(400) <= 420, "the polls page must fit a 400 px screen"

    signed_in.press(signed_in.row_of(poll.pk).find_element("css selector", '[data-poll-action="pause"]'))

    assert signed_in.messages() == [f"Paused 1 poll(s): #{poll.pk}."]
    assert state_of(poll) == "paused"
    cells = row_cells(signed_in, poll)
    assert (cells["state_badge"].lower(), cells["timing"]) == ("paused", "1 min · -")

    signed_in.press(signed_in.row_of(poll.pk).find_element("css selector", '[data-poll-action="resume"]'))

    assert signed_in.messages() == [f"Resumed 1 poll(s): #{poll.pk}."]
    assert state_of(poll) == "active"
    assert row_cells(signed_in, poll)["timing"].startswith("1 min · in ")
    assert [e.action for e in AuditEntry.objects.filter(via="admin").order_by("id")] == [
        "poll_pause",
        "poll_resume",
    ]

    signed_in.press(signed_in.row_of(poll.pk).find_element("css selector", "a.poll-results"))
    assert signed_in.path == f"/admin/tasks_app/pollresult/?schedule__id__exact={poll.pk}"
    assert len(signed_in.find_all("#result_list tbody tr")) == 1
    assert "https://example.com/prices.json" in signed_in.find("#result_list tbody tr").text


def test_a_viewer_sees_no_poll_buttons_and_a_crafted_post_is_refused(
    sqs, staff, django_user_model, admin_pages
):
    poll = started_poll(staff)
    viewer = django_user_model.objects.create_user("vera", password="viewer-pass-123", is_staff=True)
    grant(viewer, *VIEWER_PERMISSIONS)

    admin_pages.log_in("vera", "viewer-pass-123")
    admin_pages.open(POLLS)
    assert admin_pages.find_all(f'input.action-select[value="{poll.pk}"]') == []  # no bulk actions either
    assert admin_pages.find_all("[data-poll-action]") == []
    assert "prices.json" in admin_pages.text()
    admin_pages.open(f"{POLLS}{poll.pk}/change/")
    assert admin_pages.find_all("#poll-actions") == []

    # The POSTs the buttons would make, with the viewer's own CSRF token.
    statuses = admin_pages.driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const token = document.cookie.split('; ').find(c => c.startsWith('csrftoken=')).split('=')[1];
        const post = (url, fields) => fetch(url, {method: 'POST', credentials: 'same-origin',
            headers: {'X-CSRFToken': token}, body: new URLSearchParams(fields)}).then(r => r.status);
        Promise.all([
          post(arguments[0] + 'pause/', {}),
          post(arguments[0] + 'run/', {}),
          post(arguments[0] + 'stop/', {}),
          post(arguments[1],
               {action: 'stop_polls', _selected_action: arguments[2], index: 0, confirmed: 'yes'}),
        ]).then(done);
        """,
        f"{POLLS}{poll.pk}/",
        POLLS,
        poll.pk,
    )

    assert statuses == [403, 403, 403, 403]
    assert state_of(poll) == "active"
    assert not Message.objects.filter(queue="data_polling", source="manual").exists()
    assert not AuditEntry.objects.filter(via="admin").exists()


def notification(subject: str) -> dict:
    return {
        "task_type": "notification",
        "message": f"Tell the on-call team that {subject} and that nothing else needs doing today",
        "data": {
            "recipient": "ops@example.com",
            "notification_type": "email",
            "subject": subject,
            "body": "x",
        },
    }


def test_the_message_list_keeps_each_row_on_one_line_at_1400_px_and_fits_a_400_px_screen(
    sqs, staff, signed_in
):
    for n in range(3):
        services.message_send(
            queue="notifications", message=notification(f"export {n} is ready"), sent_by=staff
        )
    failed = services.message_send(
        queue="notifications", message=notification("the backup"), sent_by=staff
    ).record
    lifecycle.message_failed(
        worker_took(failed),
        error="webhook answered 500: " + json.dumps({"detail": "upstream timed out " * 8}),
    )

    signed_in.open("/admin/sqs_app/message/")
    signed_in.driver.set_window_size(1400, 900)
    rows = signed_in.driver.execute_script(
        """
        return Array.from(document.querySelectorAll('#result_list tbody tr')).map(tr => ({
          height: tr.getBoundingClientRect().height,
          // a cell's text on one line: as tall as one line of it (its padding aside)
          wrapped: Array.from(tr.querySelectorAll('td, th')).filter(td => {
            const style = getComputedStyle(td);
            const inner = td.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
            return inner > 2.2 * parseFloat(style.fontSize) * 1.5;
          }).map(td => td.className),
        }));
        """
    )
    table = signed_in.driver.execute_script(
        """
        const table = document.querySelector('#result_list');
        return {table: table.getBoundingClientRect().width, page: document.documentElement.scrollWidth};
        """
    )
    signed_in.driver.set_window_size(1280, 900)

    assert len(rows) == 4
    assert all(row["wrapped"] == [] for row in rows), rows
    assert len({round(row["height"]) for row in rows}) == 1, rows
    assert table["page"] <= 1400, f"the list fits 1400 px: {table}"
    assert hidden_columns_at(signed_in, 1400) == [], "every column of the message list shows at 1400 px"
    assert signed_in.page_width_at(400) <= 420, "the message list must fit a 400 px screen"
