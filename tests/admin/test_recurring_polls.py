"""The "Recurring polls" page: each poll's timing and last result, and pause / resume / run now / stop.

Every action goes through tasks_app.poll_schedules (as the API does), needs
MANAGE_POLLS on the server for GET and POST alike, and is in the audit log.
"""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from sqs_app.models import AuditEntry, Message, MessageStatus
from tasks_app.models import PollResult, PollSchedule
from tests.admin.conftest import grant, run_action, shown_messages
from tests.helpers import drain, make_sqs_unreachable, recurring_poll

pytestmark = pytest.mark.django_db

POLLS = "/admin/tasks_app/pollschedule/"


def poll_url(poll, action: str = "") -> str:
    return f"{POLLS}{poll.pk}/{action}/" if action else f"{POLLS}{poll.pk}/change/"


def state_of(poll) -> str:
    return PollSchedule.objects.select_related("periodic_task").get(pk=poll.pk).state


def audited(action: str) -> list[AuditEntry]:
    """What the console wrote for `action` (the fixtures' own setup is done as a command)."""
    return list(AuditEntry.objects.filter(action=action, via="admin").order_by("id"))


@pytest.fixture
def started_by_alice(user):
    """An active poll started by alice's data_polling message, with two results."""
    origin = Message.objects.create(
        queue="data_polling", body={}, sent_by=user, correlation_id="prices-feed", sqs_message_id="sqs-origin"
    )
    poll = recurring_poll(
        origin=origin, correlation_id="prices-feed", source_url="https://example.com/prices.json"
    )
    old = PollResult.objects.create(
        schedule=poll, source_url=poll.source_url, status_code=200, duration_ms=5, item_count=1
    )
    PollResult.objects.filter(pk=old.pk).update(polled_at=timezone.now() - timedelta(minutes=2))
    PollResult.objects.create(
        schedule=poll, source_url=poll.source_url, status_code=203, duration_ms=9, item_count=4
    )
    PollSchedule.objects.filter(pk=poll.pk).update(last_poll_time=timezone.now() - timedelta(minutes=5))
    return PollSchedule.objects.get(pk=poll.pk)


@pytest.fixture
def manager_client(django_user_model):
    """Staff who may view polls and manage them, and nothing else."""
    user = django_user_model.objects.create_user("mona", password="manager-pass-123", is_staff=True)
    grant(user, "tasks_app.view_pollschedule", "tasks_app.view_pollresult", "sqs_app.manage_polls")
    client = Client()
    client.force_login(user)
    return client


# --- the list -------------------------------------------------------------------------------------


def test_the_page_lists_each_poll_with_its_timing_last_result_and_who_started_it(
    admin_client, started_by_alice
):
    paused = recurring_poll(paused=True)
    stopped = recurring_poll(active=False)

    response = admin_client.get(POLLS)

    assert response.status_code == 200
    html = response.content.decode()
    row = {obj.pk: obj for obj in response.context["cl"].result_list}
    assert set(row) == {started_by_alice.pk, paused.pk, stopped.pk}
    admin = response.context["cl"].model_admin
    poll = row[started_by_alice.pk]
    assert "https://example.com/prices.json" in admin.poll(poll)
    assert admin.interval(poll) == "1 min" and admin.timing(poll).startswith("1 min · ")
    assert [admin.state_badge(row[p.pk]) for p in (started_by_alice, paused, stopped)] == [
        "active",
        "paused",
        "stopped",
    ]
    assert ">in " in admin.timing(poll)  # beat runs it one interval after it was set up
    assert admin.timing(row[paused.pk]) == admin.timing(row[stopped.pk]) == "1 min · -"
    assert ">5m ago</span> · " in admin.last_result(poll)
    latest = PollResult.objects.get(status_code=203)
    assert f'href="/admin/tasks_app/pollresult/{latest.pk}/change/"' in admin.last_result(poll)
    assert "HTTP 203, 4 item(s)" in admin.last_result(poll)
    assert admin.last_result(row[paused.pk]) == "-", "never polled"
    assert admin.created_by(poll) == "alice"
    assert f'href="/admin/tasks_app/pollresult/?schedule__id__exact={started_by_alice.pk}"' in html
    assert 'href="/admin/sqs_app/message/?q=prices-feed"' in html
    assert 'id="poll-action-form"' in html


def test_the_results_link_lists_that_polls_results_only(admin_client, started_by_alice):
    other = recurring_poll()
    PollResult.objects.create(
        schedule=other, source_url=other.source_url, status_code=200, duration_ms=1, item_count=0
    )

    response = admin_client.get("/admin/tasks_app/pollresult/", {"schedule__id__exact": started_by_alice.pk})

    assert response.status_code == 200
    assert {r.status_code for r in response.context["cl"].result_list} == {200, 203}
    assert {r.schedule_id for r in response.context["cl"].result_list} == {started_by_alice.pk}


def test_the_runs_link_lists_the_messages_the_poll_sent(admin_client, started_by_alice):
    run = Message.objects.create(
        queue="data_polling", body={"schedule_id": started_by_alice.pk}, correlation_id="prices-feed"
    )
    Message.objects.create(queue="data_polling", body={}, correlation_id="something-else")

    response = admin_client.get("/admin/sqs_app/message/", {"q": "prices-feed"})

    assert {m.pk for m in response.context["cl"].result_list} == {run.pk, started_by_alice.origin_id}


@pytest.mark.parametrize("state, expected", [("active", 0), ("paused", 1), ("stopped", 2)])
def test_the_list_filters_by_state(admin_client, state, expected):
    polls = [recurring_poll(), recurring_poll(paused=True), recurring_poll(active=False)]

    response = admin_client.get(POLLS, {"state": state})

    assert [p.pk for p in response.context["cl"].result_list] == [polls[expected].pk]


def test_a_user_who_may_see_only_their_own_messages_sees_only_their_polls(client, user, started_by_alice):
    recurring_poll()
    user.is_staff = True
    user.save()
    client.force_login(grant(user, "tasks_app.view_pollschedule"))

    response = client.get(POLLS)

    assert [p.pk for p in response.context["cl"].result_list] == [started_by_alice.pk]


def test_a_poll_s_page_shows_its_details_and_buttons(admin_client, started_by_alice):
    response = admin_client.get(poll_url(started_by_alice))

    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="poll-actions"' in html
    for action in ("pause", "run"):
        assert f'action="{poll_url(started_by_alice, action)}"' in html
    assert f'href="{poll_url(started_by_alice, "stop")}"' in html
    assert f'href="/admin/sqs_app/message/{started_by_alice.origin_id}/change/"' in html
    assert (
        f'href="/admin/django_celery_beat/periodictask/{started_by_alice.periodic_task_id}/change/"' in html
    )


def test_nothing_is_added_edited_or_deleted_here(admin_client, started_by_alice):
    assert admin_client.get(f"{POLLS}add/").status_code == 403
    assert admin_client.post(poll_url(started_by_alice), {"interval_seconds": 1}).status_code == 403
    assert admin_client.post(f"{poll_url(started_by_alice)[:-7]}delete/", {"post": "yes"}).status_code == 403
    response = admin_client.get(POLLS)
    assert response.context["has_add_permission"] is False
    assert "delete_selected" not in response.context["cl"].model_admin.get_actions(response.wsgi_request)
    assert PollSchedule.objects.get(pk=started_by_alice.pk).interval_seconds == 60


# --- the buttons -----------------------------------------------------------------------------------


def test_pause_then_resume_by_the_row_buttons(manager_client, started_by_alice):
    list_page = manager_client.get(POLLS, {"state": "active"})
    assert f'formaction="{poll_url(started_by_alice, "pause")}"' in list_page.content.decode()

    paused = manager_client.post(poll_url(started_by_alice, "pause"), {"next": f"{POLLS}?state=active"})

    assert paused.status_code == 302 and paused["Location"] == f"{POLLS}?state=active"
    assert state_of(started_by_alice) == "paused"
    page = manager_client.get(POLLS).content.decode()
    assert f'formaction="{poll_url(started_by_alice, "resume")}"' in page

    response = manager_client.post(poll_url(started_by_alice, "resume"), follow=True)

    assert state_of(started_by_alice) == "active"
    assert shown_messages(response) == [f"Resumed 1 poll(s): #{started_by_alice.pk}."]
    [pause], [resume] = audited("poll_pause"), audited("poll_resume")
    assert (pause.actor, pause.queue, pause.detail["schedule_id"]) == (
        "mona",
        "data_polling",
        started_by_alice.pk,
    )
    assert resume.succeeded is True


def test_run_now_sends_one_poll_now_and_links_to_it(manager_client, started_by_alice, boto_sqs):
    response = manager_client.post(poll_url(started_by_alice, "run"), follow=True)

    [sent] = drain(boto_sqs, "data_polling")
    body = json.loads(sent["Body"])
    assert (body["source"], body["schedule_id"], body["correlation_id"]) == (
        "manual",
        started_by_alice.pk,
        "prices-feed",
    )
    record = Message.objects.get(sqs_message_id=sent["MessageId"])
    assert (record.status, record.sent_by.username) == (MessageStatus.SENT, "mona")
    [shown] = shown_messages(response)
    assert f'href="/admin/sqs_app/message/{record.pk}/change/"' in shown
    [entry] = audited("poll_run")
    assert (entry.message_ids, entry.count, entry.succeeded) == ([sent["MessageId"]], 1, True)
    assert state_of(started_by_alice) == "active"


def test_run_now_when_sqs_is_down_says_so_and_the_audit_log_records_the_failure(
    manager_client, started_by_alice, sqs, settings
):
    make_sqs_unreachable(settings)

    response = manager_client.post(poll_url(started_by_alice, "run"), follow=True)

    [shown] = shown_messages(response)
    assert shown.startswith(f"Failed: #{started_by_alice.pk} (")
    [entry] = audited("poll_run")
    assert (entry.succeeded, entry.detail["error"]) == (False, "SQS_UNAVAILABLE")


def test_stop_asks_first_then_stops_for_good(manager_client, started_by_alice, sqs_untouched):
    confirmation = manager_client.get(poll_url(started_by_alice, "stop"))

    assert confirmation.status_code == 200
    assert "Stopping is final" in confirmation.content.decode()
    assert state_of(started_by_alice) == "active"

    response = manager_client.post(poll_url(started_by_alice, "stop"), follow=True)

    assert state_of(started_by_alice) == "stopped"
    assert shown_messages(response) == [f"Stopped 1 poll(s): #{started_by_alice.pk}."]
    assert len(audited("poll_stop")) == 1
    row = manager_client.get(POLLS).context["cl"].result_list[0]
    assert manager_client.get(POLLS).context["cl"].model_admin.buttons(row) == "-"
    refused = manager_client.post(poll_url(started_by_alice, "resume"), follow=True)
    assert shown_messages(refused) == [f"Left alone, stopped for good: #{started_by_alice.pk}."]
    assert state_of(started_by_alice) == "stopped"
    assert [e.succeeded for e in audited("poll_resume")] == [False]


# --- bulk actions ----------------------------------------------------------------------------------


def test_the_bulk_actions_say_exactly_what_they_did(admin_client, sqs_untouched):
    active, paused, stopped = recurring_poll(), recurring_poll(paused=True), recurring_poll(active=False)

    response = run_action(admin_client, POLLS, "pause_polls", [active, paused, stopped])

    assert shown_messages(response) == [
        f"Paused 1 poll(s): #{active.pk}.",
        f"Already paused, left as they were: #{paused.pk}.",
        f"Left alone, stopped for good: #{stopped.pk}.",
    ]
    assert [state_of(p) for p in (active, paused, stopped)] == ["paused", "paused", "stopped"]
    assert len(audited("poll_pause")) == 3


def test_bulk_run_now_sends_one_message_per_poll(admin_client, boto_sqs):
    first, second = recurring_poll(), recurring_poll(paused=True)

    response = run_action(admin_client, POLLS, "run_polls_now", [first, second])

    assert shown_messages(response)[0].startswith("Sent 2 poll(s) now: ")
    assert sorted(json.loads(m["Body"])["schedule_id"] for m in drain(boto_sqs, "data_polling")) == sorted(
        [first.pk, second.pk]
    )


def test_the_stop_action_shows_a_confirmation_with_the_count_then_stops(admin_client, sqs_untouched):
    chosen, other = recurring_poll(), recurring_poll()

    confirmation = run_action(admin_client, POLLS, "stop_polls", [chosen])

    assert confirmation.context["title"] == "Stop 1 recurring poll(s)?"
    assert state_of(chosen) == "active"
    response = admin_client.post(
        POLLS,
        {"action": "stop_polls", "_selected_action": [chosen.pk], "index": 0, "confirmed": "yes"},
        follow=True,
    )

    assert shown_messages(response) == [f"Stopped 1 poll(s): #{chosen.pk}."]
    assert (state_of(chosen), state_of(other)) == ("stopped", "active")


# --- who may ---------------------------------------------------------------------------------------


def test_a_viewer_sees_the_polls_and_no_buttons_or_actions(viewer_client, started_by_alice):
    response = viewer_client.get(POLLS)

    assert response.status_code == 200
    html = response.content.decode()
    assert [p.pk for p in response.context["cl"].result_list] == [started_by_alice.pk]
    assert "data-poll-action" not in html and 'name="action"' not in html
    assert "Pause" not in html and "Run now" not in html
    detail = viewer_client.get(poll_url(started_by_alice)).content.decode()
    assert 'id="poll-actions"' not in detail


@pytest.mark.parametrize("action", ["pause", "resume", "run", "stop"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_a_viewer_is_refused_every_action_url(viewer_client, started_by_alice, sqs_untouched, action, method):
    response = getattr(viewer_client, method)(poll_url(started_by_alice, action))

    assert response.status_code == 403
    assert state_of(started_by_alice) == "active"
    assert not AuditEntry.objects.filter(via="admin").exists()


@pytest.mark.parametrize("action", ["pause_polls", "resume_polls", "run_polls_now", "stop_polls"])
def test_a_viewer_s_crafted_bulk_action_is_refused(viewer_client, started_by_alice, sqs_untouched, action):
    response = viewer_client.post(
        POLLS, {"action": action, "_selected_action": [started_by_alice.pk], "index": 0, "confirmed": "yes"}
    )

    assert response.status_code == 403
    assert state_of(started_by_alice) == "active"


def test_staff_who_may_not_view_polls_cannot_open_the_page(client, django_user_model, started_by_alice):
    nobody = django_user_model.objects.create_user("nora", password="pw-123456789", is_staff=True)
    client.force_login(grant(nobody, "sqs_app.manage_polls"))

    assert client.get(POLLS).status_code == 403
