"""Operator runs: what survives a worker killed at any line, leases, the rate, and what the page says."""

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from sqs_app import sqs_client
from sqs_app.models import (
    AuditEntry,
    EventKind,
    ItemOutcome,
    Message,
    MessageStatus,
    OperatorRun,
    RunKind,
    RunStatus,
)
from sqs_app.operations import dead_letters, runs
from tests.admin.conftest import dead_lettered, run_to_end
from tests.helpers import drain

pytestmark = pytest.mark.django_db

RUNS = "/admin/sqs_app/operatorrun/"


class Killed(BaseException):
    """A worker dying mid-slice: not an error any code would catch."""


def replay_run(staff, records, **parameters) -> OperatorRun:
    run = runs.run_draft_replay(
        messages=Message.objects.filter(pk__in=[r.pk for r in records]), to_queue=None, rate=None, user=staff
    )
    OperatorRun.objects.filter(pk=run.pk).update(
        status=RunStatus.QUEUED, parameters={**run.parameters, **parameters}
    )
    return OperatorRun.objects.get(pk=run.pk)


def redrive_run(staff, *, rate=None, chosen=None) -> OperatorRun:
    run = runs.run_draft_dead_letters(
        kind=RunKind.REDRIVE, queue="notifications", chosen=chosen, rate=rate, user=staff
    )
    OperatorRun.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED)
    return OperatorRun.objects.get(pk=run.pk)


def as_if_its_worker_died(run: OperatorRun) -> None:
    """A killed worker releases nothing: its lease simply runs out."""
    OperatorRun.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def failed_rows(n: int) -> list[Message]:
    return [
        Message.objects.create(
            queue="default", body={"message": f"m{i}"}, status=MessageStatus.FAILED, sqs_message_id=f"sqs-{i}"
        )
        for i in range(n)
    ]


# --- a worker killed at any line ---------------------------------------------------------------------


def test_a_replay_killed_after_its_send_and_before_its_outcome_is_not_sent_twice(
    staff, boto_sqs, monkeypatch
):
    originals = failed_rows(3)
    run = replay_run(staff, originals)
    real = runs.replay_slice.item_finished
    calls = []

    def dies_on_the_second_item(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise Killed()  # the second replay is in SQS; its outcome is never written
        return real(*args, **kwargs)

    monkeypatch.setattr(runs.replay_slice, "item_finished", dies_on_the_second_item)
    with pytest.raises(Killed):
        runs.run_slice(run_id=run.pk)
    monkeypatch.setattr(runs.replay_slice, "item_finished", real)
    as_if_its_worker_died(run)

    run_to_end(run.pk)

    on_queue = drain(boto_sqs, "default")
    assert sorted(json.loads(m["Body"])["replay_of"] for m in on_queue) == ["sqs-0", "sqs-1", "sqs-2"]
    run.refresh_from_db()
    assert (run.status, run.done, run.skipped, run.failed) == (RunStatus.DONE, 3, 0, 0)
    assert run.items.get(position=1).detail == "already sent by an earlier attempt"
    for original in originals:
        assert Message.objects.filter(replay_of=original).count() == 1
        assert original.events.filter(kind=EventKind.REPLAYED).count() == 1


def test_a_replay_run_done_twice_sends_nothing_more(staff, boto_sqs):
    run = replay_run(staff, failed_rows(2))
    run_to_end(run.pk)

    assert runs.run_slice(run_id=run.pk) is None  # a duplicate delivery of its task
    OperatorRun.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED)  # even if it were taken up again
    run_to_end(run.pk)

    assert len(drain(boto_sqs, "default")) == 2
    assert OperatorRun.objects.get(pk=run.pk).done == 2


def test_a_redrive_killed_after_its_send_and_before_deleting_the_dlq_copy_finishes_without_a_second_send(
    staff, boto_sqs, monkeypatch
):
    poison = dead_lettered("poison")
    run = redrive_run(staff)
    held = []
    real_delete = sqs_client.delete_message

    def dies_before_the_delete(*, queue, receipt_handle, url=None):
        held.append((url, receipt_handle))
        raise Killed()

    monkeypatch.setattr(sqs_client, "delete_message", dies_before_the_delete)
    with pytest.raises(Killed):
        runs.run_slice(run_id=run.pk)
    monkeypatch.setattr(sqs_client, "delete_message", real_delete)
    item = run.items.get()
    assert item.outcome == ItemOutcome.SENT and item.new_message_id
    as_if_its_worker_died(run)

    # The killed worker's DLQ copy is still hidden: the run waits for it rather than call it gone.
    again_in = runs.run_slice(run_id=run.pk)
    assert again_in is not None and again_in > 1
    assert OperatorRun.objects.get(pk=run.pk).status == RunStatus.RUNNING

    # Its visibility runs out: the copy is back on the DLQ.
    [(url, handle)] = held
    boto_sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    past = timezone.now() - timedelta(seconds=1)
    run.items.update(hidden_until=past)
    OperatorRun.objects.filter(pk=run.pk).update(resume_at=past)
    run_to_end(run.pk)

    [on_queue] = drain(boto_sqs, "notifications")  # one copy, not two
    assert json.loads(on_queue["Body"])["id"] == str(poison.standard_id)
    assert on_queue["MessageId"] == item.new_message_id
    assert drain(boto_sqs, "notifications") == []
    url = sqs_client.dlq_url("notifications")
    assert (
        boto_sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
        == "0"
    )
    run.refresh_from_db()
    assert (run.status, run.done) == (RunStatus.DONE, 1)


def test_a_delivery_that_finds_the_run_held_does_nothing_and_comes_back_when_the_lease_ends(staff, boto_sqs):
    run = replay_run(staff, failed_rows(1))
    OperatorRun.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING, worker="other/1234", lease_expires_at=timezone.now() + timedelta(seconds=30)
    )

    again_in = runs.run_slice(run_id=run.pk)

    assert 29 < again_in <= 31
    assert drain(boto_sqs, "default") == []
    assert OperatorRun.objects.get(pk=run.pk).worker == "other/1234"


def test_a_slice_that_runs_out_of_time_leaves_the_rest_to_the_next(staff, boto_sqs, monkeypatch):
    run = replay_run(staff, failed_rows(3))
    monkeypatch.setattr(runs.worker, "SLICE_SECONDS", 0)

    assert runs.run_slice(run_id=run.pk) == 0
    assert OperatorRun.objects.get(pk=run.pk).done == 0
    monkeypatch.setattr(runs.worker, "SLICE_SECONDS", 45)
    run_to_end(run.pk)
    assert OperatorRun.objects.get(pk=run.pk).done == 3


# --- the rate, counted ----------------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch):
    """time.monotonic and time.sleep made of numbers: the sleeps are counted, none are slept."""
    state = {"now": 1000.0, "sleeps": []}
    monkeypatch.setattr(dead_letters.time, "monotonic", lambda: state["now"])

    def sleep(seconds):
        state["sleeps"].append(round(seconds, 3))
        state["now"] += seconds

    monkeypatch.setattr(dead_letters.time, "sleep", sleep)
    return state


def test_a_redrive_run_keeps_to_its_rate(staff, boto_sqs, clock):
    for n in range(3):
        dead_lettered(f"m{n}")
    run = redrive_run(staff, rate=2)

    run_to_end(run.pk)

    assert clock["sleeps"] == [0.5, 0.5]
    assert len(drain(boto_sqs, "notifications")) == 3


def test_a_replay_run_keeps_to_its_rate_across_slices(staff, boto_sqs, clock):
    run = replay_run(staff, failed_rows(2), rate=4)
    OperatorRun.objects.filter(pk=run.pk).update(progressed_at=timezone.now())  # a slice just did one

    run_to_end(run.pk)

    [first, second] = clock["sleeps"]
    assert 0.2 < first <= 0.25  # what was left of the interval since the last slice's item
    assert second == 0.25


# --- what the page says ---------------------------------------------------------------------------------


def test_a_run_no_worker_took_says_so(admin_client, staff, sqs):
    run = replay_run(staff, failed_rows(1))
    OperatorRun.objects.filter(pk=run.pk).update(confirmed_at=timezone.now() - timedelta(seconds=90))

    page = admin_client.get(f"{RUNS}{run.pk}/change/").content.decode()

    assert re.search(r"Waiting for a worker: no worker has taken this run in 9\d s\.", page)
    assert 'id="run-resume"' in page


def test_a_run_whose_worker_stopped_says_so_and_may_be_resumed(admin_client, staff, boto_sqs):
    run = replay_run(staff, failed_rows(1))
    OperatorRun.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING,
        started_at=timezone.now() - timedelta(minutes=3),
        progressed_at=timezone.now() - timedelta(minutes=2),
        lease_expires_at=timezone.now() - timedelta(minutes=1),
    )

    page = admin_client.get(f"{RUNS}{run.pk}/change/").content.decode()
    resumed = admin_client.post(f"{RUNS}{run.pk}/resume/")

    assert re.search(r"No worker is working on it right now; last progress 12\d s ago\.", page)
    assert resumed.status_code == 302
    assert OperatorRun.objects.get(pk=run.pk).status == RunStatus.QUEUED


def test_the_progress_refreshes_with_htmx_while_the_run_is_live_and_stops_when_it_ends(
    admin_client, staff, boto_sqs
):
    run = replay_run(staff, failed_rows(1))

    live = admin_client.get(f"{RUNS}{run.pk}/progress/")
    run_to_end(run.pk)
    ended = admin_client.get(f"{RUNS}{run.pk}/progress/")

    assert live.status_code == 200
    assert f'hx-get="{RUNS}{run.pk}/progress/" hx-trigger="every 2s"' in live.content.decode()
    assert "<html" not in live.content.decode()  # a fragment
    assert "hx-get" not in ended.content.decode()
    assert 'id="run-done">1<' in ended.content.decode()


def test_a_cancelled_run_is_left_alone_by_its_worker_and_audited(admin_client, staff, boto_sqs):
    run = replay_run(staff, failed_rows(2))
    OperatorRun.objects.filter(pk=run.pk).update(confirmed_at=timezone.now())

    admin_client.post(f"{RUNS}{run.pk}/cancel/")

    assert runs.run_slice(run_id=run.pk) is None
    assert drain(boto_sqs, "default") == []
    assert OperatorRun.objects.get(pk=run.pk).status == RunStatus.CANCELLED
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.count, entry.detail["status"]) == ("replay", 0, "cancelled")


def test_a_cancelled_draft_did_nothing_and_is_not_audited(admin_client, staff, sqs):
    run = runs.run_draft_replay(messages=Message.objects.none(), to_queue=None, rate=None, user=staff)

    admin_client.post(f"{RUNS}{run.pk}/cancel/")

    assert OperatorRun.objects.get(pk=run.pk).status == RunStatus.CANCELLED
    assert not AuditEntry.objects.exists()


def test_a_run_stopped_by_an_sqs_outage_says_why_and_resumes_from_where_it_stopped(staff, boto_sqs, settings):
    from tests.helpers import make_sqs_unreachable

    run = replay_run(staff, failed_rows(2))
    endpoint = settings.AWS_ENDPOINT_URL_SQS
    make_sqs_unreachable(settings)

    run_to_end(run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.STOPPED and run.stopped_reason.startswith("SQS_UNAVAILABLE")
    settings.AWS_ENDPOINT_URL_SQS = endpoint
    sqs_client.reset()
    OperatorRun.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED)
    run_to_end(run.pk)
    assert OperatorRun.objects.get(pk=run.pk).done == 2


# --- who may --------------------------------------------------------------------------------------------


def test_a_viewer_may_watch_a_run_but_every_button_is_403(viewer_client, staff, sqs):
    run = replay_run(staff, failed_rows(1))

    page = viewer_client.get(f"{RUNS}{run.pk}/change/")
    posts = [
        viewer_client.post(f"{RUNS}{run.pk}/{what}/").status_code for what in ("confirm", "cancel", "resume")
    ]

    assert page.status_code == 200
    assert 'id="run-cancel"' not in page.content.decode()
    assert posts == [403, 403, 403]
    assert OperatorRun.objects.get(pk=run.pk).status == RunStatus.QUEUED


def test_a_user_without_view_all_sees_only_their_own_runs(client, django_user_model, staff, sqs):
    from tests.admin.conftest import grant

    someone = django_user_model.objects.create_user("sam", password="sam-pass-123", is_staff=True)
    client.force_login(grant(someone, "sqs_app.view_message"))
    run = replay_run(staff, failed_rows(1))

    assert client.get(f"{RUNS}{run.pk}/change/").status_code == 404
    assert client.get(RUNS).context["cl"].result_count == 0


def test_runs_cannot_be_added_changed_or_deleted(admin_client, staff, sqs):
    run = replay_run(staff, failed_rows(1))

    assert admin_client.get(f"{RUNS}add/").status_code == 403
    assert admin_client.post(f"{RUNS}{run.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.get(f"{RUNS}{run.pk}/confirm/").status_code == 405
    assert OperatorRun.objects.filter(pk=run.pk).exists()
