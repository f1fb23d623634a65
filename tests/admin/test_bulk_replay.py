"""Replay many messages from the list, or all N matching a filter: a confirmation with the count, a run."""

import json

import pytest

from sqs_app.models import AuditEntry, ItemOutcome, Message, MessageStatus, OperatorRun, RunStatus
from sqs_app.services import message_send
from tests.admin.conftest import celery_queue_bodies, dead_lettered, run_action, run_to_end
from tests.helpers import drain

pytestmark = pytest.mark.django_db

MESSAGES = "/admin/sqs_app/message/"
ACTION = "replay"


def failed_row(n: int, queue: str = "default") -> Message:
    return Message.objects.create(
        queue=queue, body={"message": f"m{n}"}, status=MessageStatus.FAILED, sqs_message_id=f"sqs-{n}"
    )


def confirm(client, run: OperatorRun, **fields):
    return client.post(f"/admin/sqs_app/operatorrun/{run.pk}/confirm/", fields, follow=True)


def test_the_action_leads_to_a_confirmation_with_the_exact_count_and_sends_nothing(admin_client, boto_sqs):
    chosen = [failed_row(1), failed_row(2)]
    failed_row(3)

    response = run_action(admin_client, MESSAGES, ACTION, chosen)

    run = OperatorRun.objects.get()
    assert response.redirect_chain == [(f"/admin/sqs_app/operatorrun/{run.pk}/change/", 302)]
    assert (run.status, run.total) == (RunStatus.DRAFT, 2)
    assert [item.message_id for item in run.items.order_by("position")] == [m.pk for m in chosen]
    content = response.content.decode()
    assert "Replay 2 message(s) (selected) as new messages to each message&#x27;s own queue." in content
    assert 'id="run-confirm"' in content
    assert drain(boto_sqs, "default") == []
    assert celery_queue_bodies(boto_sqs) == []


def test_all_n_matching_the_filter_across_pages_are_replayed(admin_client, boto_sqs):
    for n in range(55):  # more than a page (50)
        failed_row(n)
    Message.objects.create(queue="default", body={"message": "fine"}, status=MessageStatus.SUCCEEDED)

    response = admin_client.post(
        f"{MESSAGES}?status__exact=failed",
        {
            "action": ACTION,
            "_selected_action": [Message.objects.first().pk],
            "select_across": "1",
            "index": 0,
        },
        follow=True,
    )

    run = OperatorRun.objects.get()
    assert run.total == 55
    assert "Replay 55 message(s) (all matching status__exact=failed)" in response.content.decode()


def test_confirming_queues_the_run_for_a_worker_and_the_worker_replays_each_once(admin_client, boto_sqs):
    originals = [failed_row(1), failed_row(2)]
    run_action(admin_client, MESSAGES, ACTION, originals)
    run = OperatorRun.objects.get()

    response = confirm(admin_client, run, to_queue="", rate="")

    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and run.confirmed_at is not None
    [task] = celery_queue_bodies(boto_sqs)
    assert (task["task"], task["argsrepr"]) == ("tasks_app.tasks.operator_run", f"[{run.pk}]")
    assert "Queued: waiting for a worker to take it." in response.content.decode()

    run_to_end(run.pk)

    run.refresh_from_db()
    assert (run.status, run.done, run.skipped, run.failed) == (RunStatus.DONE, 2, 0, 0)
    replays = drain(boto_sqs, "default")
    assert sorted(json.loads(m["Body"])["replay_of"] for m in replays) == ["sqs-1", "sqs-2"]
    for original in originals:
        assert Message.objects.get(replay_of=original).sqs_message_id in {m["MessageId"] for m in replays}
        assert Message.objects.get(pk=original.pk).status == MessageStatus.FAILED
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.via, entry.actor, entry.count) == ("replay", "admin", "admin", 2)
    assert sorted(entry.message_ids) == sorted(m["MessageId"] for m in replays)
    assert entry.detail["run"] == run.pk


def test_the_report_says_what_was_skipped_and_why(admin_client, boto_sqs):
    fine, not_an_object = failed_row(1), failed_row(2)
    Message.objects.filter(pk=not_an_object.pk).update(body="plain text")
    broken = Message.objects.create(
        queue="notifications", body={"task_type": "notification", "data": {}}, status=MessageStatus.FAILED
    )
    run_action(admin_client, MESSAGES, ACTION, [fine, not_an_object, broken])
    run = OperatorRun.objects.get()
    confirm(admin_client, run)

    run_to_end(run.pk)

    run.refresh_from_db()
    assert (run.done, run.skipped, run.failed, run.total) == (1, 2, 0, 3)
    page = admin_client.get(f"/admin/sqs_app/operatorrun/{run.pk}/change/").content.decode()
    assert "Its body is not a JSON object" in page
    assert "Its body no longer validates." in page
    skipped = run.items.filter(outcome=ItemOutcome.SKIPPED).order_by("position")
    assert [item.message_id for item in skipped] == [not_an_object.pk, broken.pk]
    assert AuditEntry.objects.get().succeeded is True  # skips are reported, not failures


def test_a_replay_run_may_go_to_another_queue_at_a_capped_rate(admin_client, boto_sqs):
    run_action(admin_client, MESSAGES, ACTION, [dead_lettered("a")])
    run = OperatorRun.objects.get()

    confirm(admin_client, run, to_queue="default", rate="2")

    run.refresh_from_db()
    assert (run.queue, run.parameters["rate"], run.parameters["to_queue"]) == ("default", 2.0, "default")
    run_to_end(run.pk)
    assert len(drain(boto_sqs, "default")) == 1
    assert drain(boto_sqs, "notifications") == []


def test_a_rate_out_of_bounds_is_refused_beside_its_field(admin_client, boto_sqs):
    run_action(admin_client, MESSAGES, ACTION, [failed_row(1)])
    run = OperatorRun.objects.get()

    response = confirm(admin_client, run, rate="1000")

    assert response.context["form"].errors["rate"] == ["Ensure this value is less than or equal to 100.0."]
    assert OperatorRun.objects.get().status == RunStatus.DRAFT
    assert celery_queue_bodies(boto_sqs) == []


def test_a_viewer_is_not_offered_replay_and_a_crafted_replay_post_gets_403(viewer_client, boto_sqs):
    record = dead_lettered()

    listing = viewer_client.get(MESSAGES)
    crafted = viewer_client.post(MESSAGES, {"action": ACTION, "_selected_action": [record.pk], "index": 0})

    assert listing.status_code == 200
    assert listing.context["action_form"] is None or ACTION not in dict(
        listing.context["action_form"].fields["action"].choices
    )
    assert crafted.status_code == 403
    assert not OperatorRun.objects.exists()


def test_messages_on_queues_a_grant_excludes_are_left_out_and_said_so(default_only_client, default_only, sqs):
    mine_default = message_send(queue="default", message={"message": "x"}, sent_by=default_only).record
    mine_elsewhere = message_send(
        queue="task_processing", message={"message": "y"}, sent_by=default_only
    ).record

    response = run_action(default_only_client, MESSAGES, ACTION, [mine_default, mine_elsewhere])

    run = OperatorRun.objects.get()
    assert [item.message_id for item in run.items.all()] == [mine_default.pk]
    assert "left out, not permitted: 1 on task_processing" in response.content.decode()


def test_only_messages_on_refused_queues_is_a_403(default_only_client, default_only, sqs):
    elsewhere = message_send(queue="task_processing", message={"message": "y"}, sent_by=default_only).record

    response = default_only_client.post(
        MESSAGES, {"action": ACTION, "_selected_action": [elsewhere.pk], "index": 0}
    )

    assert response.status_code == 403
    assert not OperatorRun.objects.exists()


def test_a_replay_to_a_queue_the_grant_excludes_is_refused_at_confirmation(
    default_only_client, default_only, boto_sqs
):
    mine = message_send(queue="default", message={"message": "x"}, sent_by=default_only).record
    run_action(default_only_client, MESSAGES, ACTION, [mine])
    run = OperatorRun.objects.get()

    crafted = default_only_client.post(
        f"/admin/sqs_app/operatorrun/{run.pk}/confirm/", {"to_queue": "notifications"}
    )

    assert crafted.status_code == 200  # the form refuses a queue it does not offer
    assert "notifications is not one of the available choices" in crafted.content.decode()
    assert OperatorRun.objects.get().status == RunStatus.DRAFT
