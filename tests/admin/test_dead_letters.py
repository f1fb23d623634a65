"""The dead-letter pages: peek (messages stay in the DLQ), redrive and delete as runs, who may do what."""

import json

import pytest

from sqs_app import sqs_client
from sqs_app.models import AuditEntry, EventKind, ItemOutcome, Message, MessageStatus, OperatorRun, RunStatus
from sqs_app.operations import peek
from sqs_app.queues import queue_spec
from tests.admin.conftest import dead_lettered, run_to_end, shown_messages
from tests.helpers import drain

pytestmark = pytest.mark.django_db

DEAD = "/admin/sqs_app/message/dead-letters/"
NOTIFICATIONS = f"{DEAD}notifications/"


def dlq_contents(boto_sqs, queue: str = "notifications") -> dict[str, str]:
    """{DLQ message id: body} of everything on the DLQ, visible or not (read, then handed back)."""
    url = boto_sqs.get_queue_url(QueueName=queue_spec(queue).dlq_name)["QueueUrl"]
    attributes = boto_sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0", "a peek must leave nothing hidden"
    found, handles = {}, []
    while batch := boto_sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30).get(
        "Messages", []
    ):
        for message in batch:
            found[message["MessageId"]] = message["Body"]
            handles.append(message["ReceiptHandle"])
    for handle in handles:
        boto_sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    return found


def dlq_id_of(record: Message) -> str:
    return record.events.get(kind=EventKind.FAILED).detail["dlq_message_id"]


def act(client, queue: str, action: str, ids=(), **extra):
    return client.post(f"{DEAD}{queue}/", {"action": action, "ids": list(ids), **extra}, follow=True)


def confirm(client, run: OperatorRun, **fields):
    return client.post(f"/admin/sqs_app/operatorrun/{run.pk}/confirm/", fields, follow=True)


# --- the pages ---------------------------------------------------------------------------------


def test_the_index_lists_every_dlq_with_its_depth(admin_client, sqs):
    dead_lettered()

    response = admin_client.get(DEAD)

    assert response.status_code == 200
    rows = {row["queue"]: row["visible"] for row in response.context["rows"]}
    assert rows == {"default": 0, "data_polling": 0, "task_processing": 0, "notifications": 1, "celery": 0}
    assert f'href="{NOTIFICATIONS}"' in response.content.decode()


def test_a_dlq_page_shows_each_message_with_its_error_receives_age_and_history(admin_client, boto_sqs):
    first, second = dead_lettered("first"), dead_lettered("second")
    Message.objects.filter(pk=first.pk).update(receive_count=3)

    response = admin_client.get(NOTIFICATIONS)

    assert response.status_code == 200
    rows = {row["letter"].dlq_message_id: row for row in response.context["rows"]}
    assert set(rows) == {dlq_id_of(first), dlq_id_of(second)}
    row = rows[dlq_id_of(first)]
    assert row["letter"].last_error == "HTTP 404 from the webhook"
    assert row["letter"].receive_count == 3
    assert row["letter"].task_type == "notification"
    assert row["record_url"] == f"/admin/sqs_app/message/{first.pk}/change/"
    assert row["age"].endswith("s")
    content = response.content.decode()
    assert "HTTP 404 from the webhook" in content
    assert f'href="/admin/sqs_app/message/{first.pk}/change/"' in content
    assert 'value="redrive_selected"' in content and 'value="delete_selected"' in content


def test_looking_at_a_dlq_leaves_every_message_in_it_with_its_content(admin_client, boto_sqs):
    for n in range(12):  # more than one receive of ten
        dead_lettered(f"m{n}")
    before = dlq_contents(boto_sqs)

    admin_client.get(NOTIFICATIONS)
    admin_client.get(NOTIFICATIONS)

    assert dlq_contents(boto_sqs) == before
    assert len(before) == 12
    assert len(admin_client.get(NOTIFICATIONS).context["rows"]) == 12


def test_a_dlq_deeper_than_a_page_says_how_many_it_shows(admin_client, boto_sqs, monkeypatch):
    monkeypatch.setattr(peek, "PEEK_LIMIT", 3)
    for n in range(5):
        dead_lettered(f"m{n}")

    response = admin_client.get(NOTIFICATIONS)

    assert len(response.context["rows"]) == 3
    assert "Showing 3 of about 5 messages" in response.content.decode()
    assert len(dlq_contents(boto_sqs)) == 5


def test_a_message_from_another_producer_is_found_with_its_history_row(admin_client, boto_sqs):
    record = dead_lettered(raw_body="resize photo 17")

    [row] = admin_client.get(NOTIFICATIONS).context["rows"]

    assert row["letter"].record == record
    assert row["letter"].last_error == "HTTP 404 from the webhook"


def test_celerys_own_dlq_has_a_page_too(admin_client, sqs):
    sqs_client.send_message(queue="celery", body="a celery task", url=sqs_client.dlq_url("celery"))

    response = admin_client.get(f"{DEAD}celery/")

    [row] = response.context["rows"]
    assert row["letter"].raw_body == "a celery task" and row["letter"].record is None


def test_an_unknown_queue_is_a_404(admin_client, sqs_untouched):
    assert admin_client.get(f"{DEAD}nope/").status_code == 404


def test_a_hung_sqs_shows_a_notice_not_a_hung_page(admin_client, hung_sqs):
    response = admin_client.get(NOTIFICATIONS)

    assert response.status_code == 200
    assert "SQS did not answer" in response.content.decode()


# --- redrive ---------------------------------------------------------------------------------------


def test_redrive_selected_confirms_the_count_then_a_worker_redrives_only_those(admin_client, boto_sqs):
    chosen, left = dead_lettered("chosen"), dead_lettered("left")

    response = act(admin_client, "notifications", "redrive_selected", [dlq_id_of(chosen)])

    run = OperatorRun.objects.get()
    assert (run.kind, run.status, run.total, run.queue) == ("redrive", RunStatus.DRAFT, 1, "notifications")
    content = response.content.decode()
    assert (
        "Redrive the 1 chosen dead letter(s) of notifications to notifications at most 5 per second."
        in content
    )
    assert drain(boto_sqs, "notifications") == []

    confirm(admin_client, run, rate="5")
    run_to_end(run.pk)

    [back] = drain(boto_sqs, "notifications")
    assert json.loads(back["Body"])["id"] == str(chosen.standard_id)
    assert set(dlq_contents(boto_sqs)) == {dlq_id_of(left)}
    assert Message.objects.get(pk=chosen.pk).status == MessageStatus.SENT
    assert Message.objects.get(pk=left.pk).status == MessageStatus.FAILED
    run.refresh_from_db()
    assert (run.status, run.done, run.total) == (RunStatus.DONE, 1, 1)
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.via, entry.queue, entry.count) == ("redrive", "admin", "notifications", 1)
    assert entry.message_ids == [back["MessageId"]]


def test_redrive_all_is_bounded_by_the_depth_when_it_was_asked(admin_client, boto_sqs):
    for n in range(3):
        dead_lettered(f"m{n}")
    act(admin_client, "notifications", "redrive_all")
    run = OperatorRun.objects.get()
    dead_lettered("later")  # after the confirmation page was drawn

    confirm(admin_client, run, rate="50")
    run_to_end(run.pk)

    run.refresh_from_db()
    assert (run.total, run.done) == (3, 3)
    assert len(drain(boto_sqs, "notifications")) == 3
    assert len(dlq_contents(boto_sqs)) == 1


def test_a_chosen_message_that_left_the_dlq_meanwhile_is_reported_skipped(admin_client, boto_sqs):
    chosen = dead_lettered("chosen")
    act(admin_client, "notifications", "redrive_selected", [dlq_id_of(chosen), "not-in-the-dlq"])
    run = OperatorRun.objects.get()

    confirm(admin_client, run, rate="50")
    run_to_end(run.pk)

    run.refresh_from_db()
    assert (run.done, run.skipped) == (1, 1)
    assert run.items.get(outcome=ItemOutcome.SKIPPED).detail == "not in the DLQ any more"


def test_nothing_chosen_is_said_and_nothing_made(admin_client, boto_sqs):
    dead_lettered()

    response = act(admin_client, "notifications", "redrive_selected")

    assert shown_messages(response) == ["Choose at least one message first."]
    assert not OperatorRun.objects.exists()


# --- delete ------------------------------------------------------------------------------------------


def test_delete_selected_removes_only_those_and_says_so_on_their_timeline(admin_client, boto_sqs):
    doomed, kept = dead_lettered("doomed"), dead_lettered("kept")

    act(admin_client, "notifications", "delete_selected", [dlq_id_of(doomed)])
    run = OperatorRun.objects.get()
    assert "Delete the 1 chosen dead letter(s) of notifications from the notifications DLQ." in (
        admin_client.get(f"/admin/sqs_app/operatorrun/{run.pk}/change/").content.decode()
    )
    confirm(admin_client, run)
    run_to_end(run.pk)

    assert set(dlq_contents(boto_sqs)) == {dlq_id_of(kept)}
    assert drain(boto_sqs, "notifications") == []
    event = Message.objects.get(pk=doomed.pk).events.get(kind=EventKind.DELETED)
    assert (event.actor, event.detail["from"]) == ("admin", "dead-letter queue")
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.count, entry.message_ids) == ("delete", 1, [dlq_id_of(doomed)])
    assert entry.detail["dead_letters"] is True


# --- who may -------------------------------------------------------------------------------------------


def test_a_viewer_sees_the_dead_letters_but_no_buttons_and_crafted_posts_get_403(viewer_client, boto_sqs):
    record = dead_lettered()
    before = dlq_contents(boto_sqs)

    page = viewer_client.get(NOTIFICATIONS)
    crafted = [
        viewer_client.post(NOTIFICATIONS, {"action": action, "ids": [dlq_id_of(record)]}).status_code
        for action in ("redrive_selected", "redrive_all", "delete_selected")
    ]

    assert page.status_code == 200
    content = page.content.decode()
    assert "HTTP 404 from the webhook" in content
    for button in ('name="ids"', "redrive_selected", "redrive_all", "delete_selected", "purge-dlq"):
        assert button not in content
    assert crafted == [403, 403, 403]
    assert not OperatorRun.objects.exists()
    assert dlq_contents(boto_sqs) == before


def test_a_user_limited_to_default_by_a_grant_may_not_see_or_act_on_another_dlq(
    default_only_client, boto_sqs
):
    record = dead_lettered()

    page = default_only_client.get(NOTIFICATIONS)
    crafted = default_only_client.post(NOTIFICATIONS, {"action": "redrive_all"})
    own = default_only_client.get(f"{DEAD}default/")

    assert (page.status_code, crafted.status_code, own.status_code) == (403, 403, 200)
    assert not OperatorRun.objects.exists()
    assert set(dlq_contents(boto_sqs)) == {dlq_id_of(record)}


def test_only_who_may_redrive_may_confirm_and_only_its_maker(
    admin_client, viewer_client, operator_staff_client, boto_sqs
):
    dead_lettered()
    act(admin_client, "notifications", "redrive_all")
    run = OperatorRun.objects.get()

    by_viewer = viewer_client.post(f"/admin/sqs_app/operatorrun/{run.pk}/confirm/", {"rate": "5"})
    by_other_operator = operator_staff_client.post(
        f"/admin/sqs_app/operatorrun/{run.pk}/confirm/", {"rate": "5"}
    )

    assert (by_viewer.status_code, by_other_operator.status_code) == (403, 403)
    assert OperatorRun.objects.get().status == RunStatus.DRAFT
