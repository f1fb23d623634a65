"""history_prune: retention for the message history, the poll results and operator runs, in batches."""

from datetime import timedelta

import pytest
from django.utils import timezone

from sqs_app.models import AuditEntry, Message, MessageEvent, OperatorRun, RunKind, RunStatus
from tasks_app.models import PollResult

pytestmark = pytest.mark.django_db


def message(days_old: int, n: int) -> Message:
    record = Message.objects.create(
        queue="default", sqs_message_id=f"m-{days_old}-{n}", body={}, status="succeeded"
    )
    Message.objects.filter(pk=record.pk).update(created_at=timezone.now() - timedelta(days=days_old))
    MessageEvent.objects.create(message=record, kind="sent")
    return record


def poll_result(days_old: int) -> PollResult:
    result = PollResult.objects.create(
        source_url="https://example.com", status_code=200, duration_ms=1, item_count=0
    )
    PollResult.objects.filter(pk=result.pk).update(polled_at=timezone.now() - timedelta(days=days_old))
    return result


def test_prune_deletes_history_and_poll_results_older_than_the_retention(command, settings):
    settings.HISTORY_RETENTION_DAYS = 30
    old = [message(40, n) for n in range(5)]
    recent = message(10, 0)
    poll_result(40)
    kept_result = poll_result(1)

    result = command("history_prune", "--batch-size", "2", "--json", "--operator", "carol")

    assert result.code == 0
    assert (result.json["messages"], result.json["poll_results"], result.json["days"]) == (5, 1, 30)
    assert list(Message.objects.all()) == [recent]
    assert not MessageEvent.objects.filter(message_id__in=[m.pk for m in old]).exists()
    assert list(PollResult.objects.all()) == [kept_result]
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.count) == ("prune", "carol", 5)


def test_prune_with_days_and_dry_run_only_counts(command):
    message(8, 0)
    message(3, 0)

    result = command("history_prune", "--days", "7", "--dry-run")

    assert result.code == 0
    assert result.out.startswith(
        "Would delete 1 message(s), 0 poll result(s) and 0 operator run(s) older than 7 day(s)"
    )
    assert Message.objects.count() == 2
    assert not AuditEntry.objects.exists()


def operator_run(status: str, *, days_old: int) -> OperatorRun:
    then = timezone.now() - timedelta(days=days_old)
    return OperatorRun.objects.create(
        kind=RunKind.REPLAY,
        status=status,
        created_at=then,
        finished_at=then if status in RunStatus.finished() else None,
    )


def test_prune_deletes_ended_and_abandoned_operator_runs_but_never_one_that_may_still_act(command):
    ended = operator_run(RunStatus.DONE, days_old=40)
    abandoned = operator_run(RunStatus.DRAFT, days_old=40)
    stuck_but_live = operator_run(RunStatus.RUNNING, days_old=40)
    recent = operator_run(RunStatus.CANCELLED, days_old=2)

    result = command("history_prune", "--days", "30", "--json")

    assert result.json["operator_runs"] == 2
    assert not OperatorRun.objects.filter(pk__in=[ended.pk, abandoned.pk]).exists()
    assert set(OperatorRun.objects.all()) == {stuck_but_live, recent}
