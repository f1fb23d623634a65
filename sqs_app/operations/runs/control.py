"""What an operator does to a run: draft it, confirm it, resume it, cancel it; and handing it to a worker."""

import logging

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from ... import errors, sqs_client
from ...models import Message, OperatorRun, OperatorRunItem, RunKind, RunStatus
from ...permissions import Action
from ..common import operator_queue_require
from .end import run_audit

logger = logging.getLogger(__name__)

MIN_RATE, MAX_RATE = 0.1, 100.0  # messages per second an operator may choose
MAX_ITEMS = 100_000  # a bigger replay is refused: narrow the filter

# The permission each kind of run needs, asked when it is confirmed and again by the worker.
KIND_ACTIONS = {
    RunKind.REPLAY: Action.REPLAY,
    RunKind.REDRIVE: Action.REDRIVE,
    RunKind.DELETE_DEAD_LETTERS: Action.DELETE_DEAD_LETTERS,
}


def rate_check(rate: float | None) -> float | None:
    if rate is not None and not MIN_RATE <= rate <= MAX_RATE:
        raise errors.InvalidParameter(
            f"The rate must be between {MIN_RATE:g} and {MAX_RATE:g} messages per second.",
            details={"rate": rate},
        )
    return rate


def run_draft_replay(
    *, messages: QuerySet[Message], to_queue: str | None, rate: float | None, user, selection: str = ""
) -> OperatorRun:
    """A replay of exactly these messages, oldest first, to confirm (`selection`: how they were chosen)."""
    rate_check(rate)
    pks = list(messages.order_by("pk").values_list("pk", flat=True)[: MAX_ITEMS + 1])
    if len(pks) > MAX_ITEMS:
        raise errors.InvalidParameter(
            f"A replay acts on at most {MAX_ITEMS} messages; narrow the filter.", details={"limit": MAX_ITEMS}
        )
    with transaction.atomic():
        run = OperatorRun.objects.create(
            kind=RunKind.REPLAY,
            queue=to_queue or "",
            total=len(pks),
            parameters={"rate": rate, "to_queue": to_queue, "selection": selection},
            created_by=user,
            actor=user.username,
        )
        for start in range(0, len(pks), 1000):
            OperatorRunItem.objects.bulk_create(
                OperatorRunItem(run=run, position=start + offset, message_id=pk)
                for offset, pk in enumerate(pks[start : start + 1000])
            )
    return run


def run_draft_dead_letters(
    *, kind: RunKind, queue: str, chosen: list[str] | None, rate: float | None, user
) -> OperatorRun:
    """A redrive or delete of the DLQ messages chosen (by DLQ message id), or of the whole DLQ, to confirm.

    A whole DLQ is bounded by its depth now: messages dead-lettered after the
    confirmation are left for another run.
    """
    operator_queue_require(queue)
    rate_check(rate)
    if chosen is not None and not chosen:
        raise errors.InvalidParameter("Choose at least one message.")
    total = len(chosen) if chosen else sqs_client.queue_depths(queue, dead_letters=True)["visible"]
    with transaction.atomic():
        run = OperatorRun.objects.create(
            kind=kind,
            queue=queue,
            total=total,
            parameters={"rate": rate, "chosen": chosen is not None},
            created_by=user,
            actor=user.username,
        )
        OperatorRunItem.objects.bulk_create(
            OperatorRunItem(run=run, position=position, dlq_message_id=dlq_id)
            for position, dlq_id in enumerate(chosen or [])
        )
    return run


def run_confirm(*, run: OperatorRun, rate: float | None = None, to_queue: str | None = None) -> bool:
    """Queue a draft and hand it to a worker. False when its task could not be queued (it can be resumed).

    The operator may still choose the rate and (a replay) the target queue here.
    """
    rate_check(rate)
    parameters = {**run.parameters, "rate": rate}
    fields = {}
    if run.kind == RunKind.REPLAY:
        parameters["to_queue"] = to_queue
        fields["queue"] = to_queue or ""
    confirmed = OperatorRun.objects.filter(pk=run.pk, status=RunStatus.DRAFT).update(
        status=RunStatus.QUEUED, confirmed_at=timezone.now(), parameters=parameters, **fields
    )
    if not confirmed:
        raise errors.InvalidParameter("This run is not awaiting confirmation.", details={"run": run.pk})
    return run_enqueue(run=run)


def run_resume(*, run: OperatorRun) -> bool:
    """Hand a stopped run, or one no worker is working on, to a worker again. Safe to repeat (the lease)."""
    now = timezone.now()
    resumable = OperatorRun.objects.filter(pk=run.pk).filter(
        Q(status=RunStatus.STOPPED)
        | Q(status__in=RunStatus.active()) & (Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now))
    )
    if not resumable.update(status=RunStatus.QUEUED, stopped_reason="", finished_at=None):
        raise errors.InvalidParameter("This run cannot be resumed now.", details={"run": run.pk})
    return run_enqueue(run=run)


def run_cancel(*, run: OperatorRun) -> None:
    """Cancel a run that has not finished: a worker stops before its next item. Audited if it had begun."""
    was_confirmed = run.status != RunStatus.DRAFT
    cancelled = OperatorRun.objects.filter(
        pk=run.pk, status__in=[RunStatus.DRAFT, *RunStatus.active(), RunStatus.STOPPED]
    ).update(status=RunStatus.CANCELLED, finished_at=timezone.now())
    if cancelled and was_confirmed:
        run_audit(OperatorRun.objects.get(pk=run.pk))


def run_enqueue(*, run: OperatorRun) -> bool:
    """Put the run's task on Wipsie's own `celery` queue. False (logged) when the broker refused it."""
    from tasks_app.tasks import operator_run  # tasks_app.tasks imports this package

    try:
        operator_run.apply_async(args=[run.pk])
    except Exception:  # noqa: BLE001 - whatever the broker raised, the run is kept and can be resumed
        logger.exception("Could not queue operator run %s", run.pk)
        return False
    return True
