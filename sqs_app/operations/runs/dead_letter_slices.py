"""A redrive or delete run's slice: the walk over the DLQ (operations.dead_letters), journaled in the run."""

from datetime import datetime

from django.utils import timezone

from ... import errors, sqs_client
from ...models import ItemOutcome, OperatorRun, OperatorRunItem, RunKind, RunStatus
from ...permissions import allowed
from ..dead_letters import DeadLetterJournal, JournalItem, delete_act, dlq_walk, redrive_act
from .control import KIND_ACTIONS
from .lease import lease_renew
from .outcomes import SliceOutcome, item_finished, wait_before_first_item


class RunJournal(DeadLetterJournal):
    """A DeadLetterJournal kept in the run's items: every step written as it happens."""

    def __init__(self, run: OperatorRun, *, token: str):
        chosen = bool(run.parameters.get("chosen"))
        items = list(run.items.all())
        super().__init__(
            limit=None if chosen else run.total,
            only_ids={i.dlq_message_id for i in items} if chosen else None,
        )
        self.run, self.token, self._halted = run, token, ""
        self.rows = {i.dlq_message_id: i for i in items}
        for row in items:
            self.items[row.dlq_message_id] = JournalItem(
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
        row = self.rows.get(dlq_message_id)
        if row is None:
            position = len(self.rows)
            row = OperatorRunItem.objects.create(
                run=self.run, position=position, dlq_message_id=dlq_message_id, **fields
            )
            self.rows[dlq_message_id] = row
        else:
            OperatorRunItem.objects.filter(pk=row.pk).update(**fields)

    def sent(self, dlq_message_id: str, new_message_id: str) -> None:
        super().sent(dlq_message_id, new_message_id)
        OperatorRunItem.objects.filter(pk=self.rows[dlq_message_id].pk).update(
            outcome=ItemOutcome.SENT, new_message_id=new_message_id
        )

    def finish(self, dlq_message_id, outcome, *, new_message_id=None, error=None) -> None:
        super().finish(dlq_message_id, outcome, new_message_id=new_message_id, error=error)
        item = self.items[dlq_message_id]
        item_finished(
            self.run,
            self.rows[dlq_message_id].pk,
            outcome,
            new_message_id=item.new_message_id or "",
            detail=item.error,
        )
        if not lease_renew(self.run, token=self.token):
            self._halted = "cancelled, or taken over by another delivery"

    def halted(self) -> str:
        return self._halted

    def open_items(self) -> list[JournalItem]:
        """The items begun and not finished: their worker was stopped between two steps."""
        return [i for i in self.items.values() if i.outcome in (ItemOutcome.STARTED, ItemOutcome.SENT)]


def dead_letter_slice(run: OperatorRun, *, token: str, deadline: float) -> SliceOutcome:
    """One walk over the DLQ, until everything visible was looked at, or the deadline (time.monotonic)."""
    journal = RunJournal(run, token=token)
    act = (redrive_act if run.kind == RunKind.REDRIVE else delete_act)(actor=run.actor)
    if not (allowed(run.created_by, KIND_ACTIONS[run.kind], queue=run.queue)):
        reason = f"{run.actor} may no longer do this on {run.queue}"
        return SliceOutcome(status=RunStatus.STOPPED, reason=reason)
    try:
        depth = sqs_client.queue_depths(run.queue, dead_letters=True)["visible"]
        walk = dlq_walk(
            queue=run.queue,
            act=act,
            journal=journal,
            # One pass over what is visible now; the open items are visible again by now (resume_at).
            look_at_most=depth,
            rate=run.parameters.get("rate"),
            first_wait=wait_before_first_item(run),
            deadline=deadline,
            stop_when_redriven_again=run.kind == RunKind.REDRIVE,
        )
    except errors.SQSUnavailable as exc:
        return SliceOutcome(status=RunStatus.STOPPED, reason=f"{exc.error_code}: {exc.message}")
    if walk.halted:
        return SliceOutcome()
    if walk.stopped:
        return SliceOutcome(status=RunStatus.STOPPED, reason=walk.stopped)
    if walk.out_of_time:
        return SliceOutcome(again_in=0)
    return _settle(run, journal)


def _settle(run: OperatorRun, journal: RunJournal) -> SliceOutcome:
    """The walk looked at everything visible: settle what it did not meet, or wait for hidden copies."""
    now = timezone.now()
    hidden = [i.hidden_until for i in journal.open_items() if i.hidden_until and i.hidden_until > now]
    if hidden:
        # Copies a killed worker held are still hidden: look for them once they are visible again.
        OperatorRun.objects.filter(pk=run.pk).update(resume_at=max(hidden))
        return SliceOutcome(again_in=(max(hidden) - now).total_seconds() + 1)
    for item in journal.open_items():
        # Begun by a worker that was stopped, and no longer in the DLQ: its delete happened.
        row = journal.rows[item.dlq_message_id]
        item_finished(run, row.pk, ItemOutcome.DONE, detail="finished by an earlier attempt")
    for row in run.items.filter(outcome=ItemOutcome.PENDING):
        item_finished(run, row.pk, ItemOutcome.SKIPPED, detail="not in the DLQ any more")
    return SliceOutcome(status=RunStatus.DONE)
