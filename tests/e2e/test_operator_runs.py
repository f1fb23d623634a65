"""Operator runs done by a real worker: queued on Wipsie's own `celery` queue, resumed after a kill."""

import json

import pytest

from sqs_app.models import AuditEntry, Message, MessageStatus, OperatorRun, RunStatus
from sqs_app.operations import runs
from tests.helpers import drain

from .conftest import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def failed_rows(n: int) -> list[Message]:
    """Failed messages of `default` (which no worker consumes, so their replays stay there to count)."""
    return [
        Message.objects.create(
            queue="default", body={"message": f"m{i}"}, status=MessageStatus.FAILED, sqs_message_id=f"sqs-{i}"
        )
        for i in range(n)
    ]


def confirmed_replay(staff, records, *, rate=None) -> OperatorRun:
    run = runs.run_draft_replay(
        messages=Message.objects.filter(pk__in=[r.pk for r in records]), to_queue=None, rate=None, user=staff
    )
    assert runs.run_confirm(run=run, rate=rate), "the run's task was not queued"
    return run


def ended(run: OperatorRun) -> OperatorRun | None:
    run = OperatorRun.objects.get(pk=run.pk)
    return run if run.status in RunStatus.finished() else None


def test_a_worker_takes_a_confirmed_run_from_the_celery_queue_and_finishes_it(start_worker, staff, boto_sqs):
    originals = failed_rows(3)
    run = confirmed_replay(staff, originals)

    start_worker()
    run = wait_until(lambda: ended(run), timeout=60)

    assert (run.status, run.done, run.skipped, run.failed) == (RunStatus.DONE, 3, 0, 0)
    assert run.worker  # which worker held it
    replays = drain(boto_sqs, "default")
    assert sorted(json.loads(m["Body"])["replay_of"] for m in replays) == ["sqs-0", "sqs-1", "sqs-2"]
    assert AuditEntry.objects.get().detail["run"] == run.pk


def test_a_run_whose_worker_is_killed_is_finished_by_another_without_sending_twice(
    start_worker, staff, boto_sqs
):
    originals = failed_rows(8)
    # Short leases and visibility, so that the takeover comes within seconds, not a minute.
    quick = {"OPERATOR_RUN_LEASE_SECONDS": "3", "CELERY_VISIBILITY_TIMEOUT": "5"}
    run = confirmed_replay(staff, originals, rate=2)

    first = start_worker(**quick)
    wait_until(lambda: OperatorRun.objects.get(pk=run.pk).done >= 3, timeout=60)
    first.kill()
    stopped_at = OperatorRun.objects.get(pk=run.pk).done
    assert stopped_at < 8, "the run must still have had work left when its worker died"

    start_worker(**quick)
    run = wait_until(lambda: ended(run), timeout=120)

    assert (run.status, run.done, run.failed) == (RunStatus.DONE, 8, 0)
    replays = drain(boto_sqs, "default")
    ids = {json.loads(m["Body"])["id"] for m in replays}
    assert len(ids) == 8  # every original replayed, each under its one deterministic id
    # Each replay is sent once; the one window for a second copy (killed between SQS
    # accepting it and its history row being confirmed) leaves a copy with the same id.
    assert len(replays) - len(ids) <= 1
    for original in originals:
        assert Message.objects.filter(replay_of=original).count() == 1
