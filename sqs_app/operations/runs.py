"""Operator runs: long operator actions, confirmed in the admin and done by a worker.

A replay of every message matching a filter, or the redrive of a whole DLQ at
a capped rate, can take minutes; no HTTP request is held for it.

1. **Draft.** The admin records the run (`run_draft_replay`, `run_draft_dead_letters`)
   with exactly what it will act on: a replay's history rows, one item each;
   the DLQ messages chosen; or, for a whole DLQ, its depth then as the bound.
   The confirmation page shows that count.
2. **Confirm.** `run_confirm` queues it and puts one task on Wipsie's own
   `celery` queue (tasks_app.tasks.operator_run).
3. **Slices.** The task calls `run_slice`: it takes the run's lease, works for
   at most SLICE_SECONDS, records every item's outcome as it happens, then
   queues the next slice (so a long run never meets Celery's time limits, and
   leaves the worker's slot to other tasks between slices) until it is done.

**A worker killed at any line.** Celery acknowledges the task only when a
slice returns (acks_late), so the task comes back to another worker. What it
finds is durable:

- each item's outcome is written in one transaction with the run's counters,
  so what is done is never done again;
- a replay's new message has a deterministic id, uuid5 of the run and the
  original. An item replayed and killed before its outcome was written is
  sent again with the same id, and message_send's duplicate-id rule makes that
  a no-op. (The one window left: killed after SQS accepted the send and before
  the history row was confirmed, with no worker having seen the message yet:
  then a second copy goes out, with the same id, and the worker's claim
  processes that id once.)
- a redrive records "started" before its send and "sent" after it, and deletes
  the DLQ copy last. Resumed, a "sent" item only has its copy deleted; a
  "started" one is sent again (same StandardMessage id: the claim processes it
  once). The DLQ copies the killed worker held stay hidden until their
  visibility ends, so the run waits until then (`resume_at`) before it looks
  for them again;
- two deliveries of the task never work on one run at once: a slice holds a
  lease (renewed with every item, with a token of its own); another delivery
  finding it held comes back when the lease would end.

Each run ends with one audit entry (done, stopped or cancelled), with its counts.
"""

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import DateTimeField, F, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from .. import errors, sqs_client
from ..audit import audit_record
from ..models import (
    AuditAction,
    AuditVia,
    ItemOutcome,
    Message,
    OperatorRun,
    OperatorRunItem,
    RunKind,
    RunStatus,
)
from ..permissions import Action, allowed
from . import dead_letters
from .common import operator_queue_require
from .replay import replay_outcome

logger = logging.getLogger(__name__)

SLICE_SECONDS = 45  # well under Celery's soft time limit (240 s)
MIN_RATE, MAX_RATE = 0.1, 100.0  # messages per second an operator may choose
MAX_ITEMS = 100_000  # a bigger replay is refused: narrow the filter
# How long a queued run may wait before the admin says no worker has taken it.
WORKER_WAIT_NOTICE_SECONDS = 10
# uuid5 namespace of the ids of replays made by runs (any fixed UUID; this one is random).
REPLAY_ID_NAMESPACE = uuid.UUID("0c6f9f3e-7d0b-4d4e-9b2a-5b0f3d8a1c27")

KIND_ACTIONS = {
    RunKind.REPLAY: Action.REPLAY,
    RunKind.REDRIVE: Action.REDRIVE,
    RunKind.DELETE_DEAD_LETTERS: Action.DELETE_DEAD_LETTERS,
}
KIND_AUDIT = {
    RunKind.REPLAY: AuditAction.REPLAY,
    RunKind.REDRIVE: AuditAction.REDRIVE,
    RunKind.DELETE_DEAD_LETTERS: AuditAction.DELETE,
}


def rate_check(rate: float | None) -> float | None:
    if rate is not None and not MIN_RATE <= rate <= MAX_RATE:
        raise errors.InvalidParameter(
            f"The rate must be between {MIN_RATE:g} and {MAX_RATE:g} messages per second.",
            details={"rate": rate},
        )
    return rate


# --- Drafts, confirmation, cancel, resume -------------------------------------------------------


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
        _audit(OperatorRun.objects.get(pk=run.pk))


def run_enqueue(*, run: OperatorRun) -> bool:
    """Put the run's task on Wipsie's own `celery` queue. False (logged) when the broker refused it."""
    from tasks_app.tasks import operator_run

    try:
        operator_run.apply_async(args=[run.pk])
    except Exception:  # noqa: BLE001 - whatever the broker raised, the run is kept and can be resumed
        logger.exception("Could not queue operator run %s", run.pk)
        return False
    return True


# --- The worker's slices -------------------------------------------------------------------------


@dataclass
class _Slice:
    """How a slice ended: continue after `again_in` seconds, or end the run with `status`."""

    again_in: float | None = None
    status: str | None = None
    reason: str = ""


def run_slice(*, run_id: int, worker: str = "") -> float | None:
    """Work on a run for at most SLICE_SECONDS. Returns when to go on (seconds), or None: nothing to do.

    Called by the Celery task (tasks_app.tasks.operator_run), which queues the
    next slice itself; see the module's docstring for what survives a kill.
    """
    now = timezone.now()
    token = f"{worker or 'worker'}/{uuid.uuid4().hex[:8]}"
    claimed = (
        OperatorRun.objects.filter(pk=run_id, status__in=RunStatus.active())
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now))
        .update(
            status=RunStatus.RUNNING,
            lease_expires_at=now + timedelta(seconds=settings.OPERATOR_RUN_LEASE_SECONDS),
            worker=token,
            started_at=Coalesce(F("started_at"), Value(now, output_field=DateTimeField())),
        )
    )
    if not claimed:
        return _holder_ends_in(run_id)
    run = OperatorRun.objects.select_related("created_by").get(pk=run_id)
    try:
        if run.resume_at and run.resume_at > now:
            outcome = _Slice(again_in=(run.resume_at - now).total_seconds())
        elif run.kind == RunKind.REPLAY:
            outcome = _replay_slice(run, token=token, deadline=time.monotonic() + SLICE_SECONDS)
        else:
            outcome = _dead_letter_slice(run, token=token, deadline=time.monotonic() + SLICE_SECONDS)
    finally:
        # Let the next slice (or another delivery) take the run at once.
        OperatorRun.objects.filter(pk=run_id, worker=token).update(lease_expires_at=None)
    if outcome.status is not None:
        _end(run, status=outcome.status, reason=outcome.reason)
        return None
    return outcome.again_in


def _holder_ends_in(run_id: int) -> float | None:
    """Another delivery holds the run: come back when its lease would end (it may have died)."""
    run = OperatorRun.objects.filter(pk=run_id, status__in=RunStatus.active()).first()
    if run is None:
        return None  # finished, cancelled, still a draft, or gone
    if run.lease_expires_at is None:
        return 1.0
    return max(1.0, (run.lease_expires_at - timezone.now()).total_seconds() + 1)


def _first_wait(run: OperatorRun) -> float:
    """What is left of the pacing interval since the run's last item (slices together keep the rate)."""
    rate = run.parameters.get("rate")
    if not rate or run.progressed_at is None:
        return 0.0
    return max(0.0, 1.0 / rate - (timezone.now() - run.progressed_at).total_seconds())


def _still_ours(run: OperatorRun, token: str) -> bool:
    """Renew the lease; False when the run was cancelled or another delivery took it over."""
    return bool(
        OperatorRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING, worker=token).update(
            lease_expires_at=timezone.now() + timedelta(seconds=settings.OPERATOR_RUN_LEASE_SECONDS)
        )
    )


def _item_finished(run: OperatorRun, item_pk: int, outcome: str, **fields) -> None:
    """An item's outcome and the run's counters, in one transaction, at most once per item."""
    counter = {ItemOutcome.DONE: "done", ItemOutcome.SKIPPED: "skipped", ItemOutcome.FAILED: "failed"}[
        outcome
    ]
    with transaction.atomic():
        changed = OperatorRunItem.objects.filter(pk=item_pk, outcome__in=ItemOutcome.open()).update(
            outcome=outcome, **fields
        )
        if changed:
            OperatorRun.objects.filter(pk=run.pk).update(
                **{counter: F(counter) + 1}, progressed_at=timezone.now()
            )


# --- Replay runs ---


def replay_id_for(run: OperatorRun, record: Message) -> str:
    """The id of the replay of `record` by `run`: the same every time, so a repeat is a duplicate."""
    return str(uuid.uuid5(REPLAY_ID_NAMESPACE, f"{run.pk}:{record.pk}"))


def _replay_slice(run: OperatorRun, *, token: str, deadline: float) -> _Slice:
    to_queue = run.parameters.get("to_queue") or None
    user = run.created_by
    pacer = dead_letters._Pacer(run.parameters.get("rate"), first_wait=_first_wait(run))
    pending = run.items.filter(outcome__in=ItemOutcome.open()).select_related("message").order_by("position")
    for item in _in_chunks(pending):
        if time.monotonic() >= deadline:
            return _Slice(again_in=0)
        if not _still_ours(run, token):
            return _Slice()  # cancelled, or taken over: nothing more for this delivery to do
        record = item.message
        if record is None:
            _item_finished(run, item.pk, ItemOutcome.SKIPPED, detail="no longer in the history")
            continue
        target = to_queue or record.queue
        if not (
            allowed(user, Action.REPLAY, queue=record.queue) and allowed(user, Action.REPLAY, queue=target)
        ):
            # Checked again here: a permission may have been withdrawn since the confirmation.
            detail = f"{run.actor} may not replay messages of {record.queue} to {target}"
            _item_finished(run, item.pk, ItemOutcome.SKIPPED, detail=detail)
            continue
        pacer.wait()
        outcome, result, exc = replay_outcome(
            record=record,
            to_queue=to_queue,
            replay_id=replay_id_for(run, record),
            replayed_by=user,
            actor=run.actor,
        )
        if isinstance(exc, errors.SQSUnavailable | errors.DatabaseUnavailable):
            return _Slice(status=RunStatus.STOPPED, reason=f"{exc.error_code}: {exc.message}")
        if outcome == "replayed":
            _item_finished(
                run,
                item.pk,
                ItemOutcome.DONE,
                new_message_id=result["message_id"] or "",
                new_id=result["id"],
                detail="already sent by an earlier attempt" if result["duplicate"] else "",
            )
        else:
            status = ItemOutcome.SKIPPED if outcome == "skipped" else ItemOutcome.FAILED
            _item_finished(run, item.pk, status, detail=result.get("reason") or result.get("error", ""))
    return _Slice(status=RunStatus.DONE)


def _in_chunks(items: QuerySet[OperatorRunItem], size: int = 200):
    """The open items, read again a chunk at a time: each one read is given its outcome before the next
    chunk (or the slice ends), so nothing is read twice and no cursor stays open across the sends."""
    last_position = -1
    while chunk := list(items.filter(position__gt=last_position)[:size]):
        yield from chunk
        last_position = chunk[-1].position


# --- Redrive and delete runs ---


class RunJournal(dead_letters.DeadLetterJournal):
    """A DeadLetterJournal kept in the run's items: every step written as it happens."""

    def __init__(self, run: OperatorRun, *, token: str):
        chosen = bool(run.parameters.get("chosen"))
        items = list(run.items.all())
        super().__init__(
            limit=None if chosen else run.total,
            only_ids={i.dlq_message_id for i in items} if chosen else None,
        )
        self.run, self.token, self._halted = run, token, ""
        self._rows = {i.dlq_message_id: i for i in items}
        for row in items:
            self.items[row.dlq_message_id] = dead_letters.JournalItem(
                row.dlq_message_id,
                key=row.key or None,
                outcome=row.outcome,
                new_message_id=row.new_message_id or None,
                error=row.detail,
                hidden_until=row.hidden_until,
            )

    def begin(self, dlq_message_id: str, *, key: str | None, hidden_until: datetime) -> None:
        super().begin(dlq_message_id, key=key, hidden_until=hidden_until)
        fields = {"outcome": ItemOutcome.STARTED, "key": key or "", "hidden_until": hidden_until}
        row = self._rows.get(dlq_message_id)
        if row is None:
            position = len(self._rows)
            row = OperatorRunItem.objects.create(
                run=self.run, position=position, dlq_message_id=dlq_message_id, **fields
            )
            self._rows[dlq_message_id] = row
        else:
            OperatorRunItem.objects.filter(pk=row.pk).update(**fields)

    def sent(self, dlq_message_id: str, new_message_id: str) -> None:
        super().sent(dlq_message_id, new_message_id)
        OperatorRunItem.objects.filter(pk=self._rows[dlq_message_id].pk).update(
            outcome=ItemOutcome.SENT, new_message_id=new_message_id
        )

    def finish(self, dlq_message_id, outcome, *, new_message_id=None, error=None) -> None:
        super().finish(dlq_message_id, outcome, new_message_id=new_message_id, error=error)
        item = self.items[dlq_message_id]
        _item_finished(
            self.run,
            self._rows[dlq_message_id].pk,
            outcome,
            new_message_id=item.new_message_id or "",
            detail=item.error,
        )
        if not _still_ours(self.run, self.token):
            self._halted = "cancelled, or taken over by another delivery"

    def halted(self) -> str:
        return self._halted

    def open_items(self) -> list[dead_letters.JournalItem]:
        return [i for i in self.items.values() if i.outcome in (ItemOutcome.STARTED, ItemOutcome.SENT)]


def _dead_letter_slice(run: OperatorRun, *, token: str, deadline: float) -> _Slice:
    journal = RunJournal(run, token=token)
    act = (dead_letters.redrive_act if run.kind == RunKind.REDRIVE else dead_letters.delete_act)(
        actor=run.actor
    )
    if not (allowed(run.created_by, KIND_ACTIONS[run.kind], queue=run.queue)):
        return _Slice(status=RunStatus.STOPPED, reason=f"{run.actor} may no longer do this on {run.queue}")
    try:
        depth = sqs_client.queue_depths(run.queue, dead_letters=True)["visible"]
        walk = dead_letters.dlq_walk(
            queue=run.queue,
            act=act,
            journal=journal,
            # One pass over what is visible now; the open items are visible again by now (resume_at).
            look_at_most=depth,
            rate=run.parameters.get("rate"),
            first_wait=_first_wait(run),
            deadline=deadline,
            stop_when_redriven_again=run.kind == RunKind.REDRIVE,
        )
    except errors.SQSUnavailable as exc:
        return _Slice(status=RunStatus.STOPPED, reason=f"{exc.error_code}: {exc.message}")
    if walk.halted:
        return _Slice()
    if walk.stopped:
        return _Slice(status=RunStatus.STOPPED, reason=walk.stopped)
    if walk.out_of_time:
        return _Slice(again_in=0)
    return _settle(run, journal)


def _settle(run: OperatorRun, journal: RunJournal) -> _Slice:
    """The walk looked at everything visible: settle what it did not meet, or wait for hidden copies."""
    now = timezone.now()
    hidden = [i.hidden_until for i in journal.open_items() if i.hidden_until and i.hidden_until > now]
    if hidden:
        # Copies a killed worker held are still hidden: look for them once they are visible again.
        OperatorRun.objects.filter(pk=run.pk).update(resume_at=max(hidden))
        return _Slice(again_in=(max(hidden) - now).total_seconds() + 1)
    for item in journal.open_items():
        # Begun by a worker that was stopped, and no longer in the DLQ: its delete happened.
        row = journal._rows[item.dlq_message_id]
        _item_finished(run, row.pk, ItemOutcome.DONE, detail="finished by an earlier attempt")
    for row in run.items.filter(outcome=ItemOutcome.PENDING):
        _item_finished(run, row.pk, ItemOutcome.SKIPPED, detail="not in the DLQ any more")
    return _Slice(status=RunStatus.DONE)


# --- The end, and the audit entry ---


def _end(run: OperatorRun, *, status: str, reason: str = "") -> None:
    ended = OperatorRun.objects.filter(pk=run.pk, status__in=RunStatus.active()).update(
        status=status, stopped_reason=reason, finished_at=timezone.now(), lease_expires_at=None
    )
    if ended:
        _audit(OperatorRun.objects.get(pk=run.pk))


def _audit(run: OperatorRun) -> None:
    done = run.items.filter(outcome=ItemOutcome.DONE)
    ids = (
        list(done.values_list("dlq_message_id", flat=True))
        if run.kind == RunKind.DELETE_DEAD_LETTERS
        else list(done.values_list("new_message_id", flat=True))
    )
    audit_record(
        action=KIND_AUDIT[run.kind],
        via=run.via or AuditVia.ADMIN,
        user=run.created_by,
        actor=run.actor,
        queue=run.queue,
        message_ids=ids,
        count=run.done,
        succeeded=run.status == RunStatus.DONE and not run.failed,
        detail={
            "run": run.pk,
            "status": run.status,
            "total": run.total,
            "skipped": run.skipped,
            "failed": run.failed,
            "rate": run.parameters.get("rate"),
            **({"reason": run.stopped_reason} if run.stopped_reason else {}),
            **({"dead_letters": True} if run.kind == RunKind.DELETE_DEAD_LETTERS else {}),
        },
    )


# --- What the admin shows ----------------------------------------------------------------------


def run_state(run: OperatorRun) -> str:
    """One honest sentence about where the run is."""
    now = timezone.now()
    if run.status == RunStatus.DRAFT:
        return "Awaiting your confirmation: nothing has been done yet."
    if run.status == RunStatus.QUEUED and run.started_at is None:
        waited = (now - (run.confirmed_at or run.created_at)).total_seconds()
        if waited >= WORKER_WAIT_NOTICE_SECONDS:
            return (
                f"Waiting for a worker: no worker has taken this run in {int(waited)} s. Workers "
                "consume Wipsie's own queue, celery (make run starts one)."
            )
        return "Queued: waiting for a worker to take it."
    if run.status in RunStatus.active():
        if run.lease_expires_at is not None and run.lease_expires_at > now:
            return f"Running on {run.worker.rsplit('/', 1)[0]}."
        if run.resume_at and run.resume_at > now:
            return "Waiting for the DLQ copies a stopped worker left hidden to be visible again."
        last = run.progressed_at or run.started_at
        since = f"; last progress {int((now - last).total_seconds())} s ago" if last else ""
        return (
            f"No worker is working on it right now{since}. It goes on when a worker takes its task "
            "again; if none does, press Resume."
        )
    if run.status == RunStatus.STOPPED:
        return f"Stopped: {run.stopped_reason}. What was done is kept; Resume goes on from there."
    if run.status == RunStatus.CANCELLED:
        return "Cancelled. What was done before is kept."
    return "Done."
