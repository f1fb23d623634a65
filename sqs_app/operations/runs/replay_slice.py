"""A replay run's slice: each of its history rows sent again, as a new message with a deterministic id."""

import time
import uuid

from django.db.models import QuerySet

from ... import errors
from ...models import ItemOutcome, Message, OperatorRun, OperatorRunItem, RunStatus
from ...permissions import Action, allowed
from ..dead_letters import Pacer
from ..replay import replay_outcome
from .lease import lease_renew
from .outcomes import SliceOutcome, item_finished, wait_before_first_item

# uuid5 namespace of the ids of replays made by runs (any fixed UUID; this one is random).
REPLAY_ID_NAMESPACE = uuid.UUID("0c6f9f3e-7d0b-4d4e-9b2a-5b0f3d8a1c27")


def replay_id_for(run: OperatorRun, record: Message) -> str:
    """The id of the replay of `record` by `run`: the same every time, so a repeat is a duplicate."""
    return str(uuid.uuid5(REPLAY_ID_NAMESPACE, f"{run.pk}:{record.pk}"))


def replay_slice(run: OperatorRun, *, token: str, deadline: float) -> SliceOutcome:
    """Replay the run's open items in order until they are all done, or the deadline (time.monotonic)."""
    to_queue = run.parameters.get("to_queue") or None
    user = run.created_by
    pacer = Pacer(run.parameters.get("rate"), first_wait=wait_before_first_item(run))
    pending = run.items.filter(outcome__in=ItemOutcome.open()).select_related("message").order_by("position")
    for item in _in_chunks(pending):
        if time.monotonic() >= deadline:
            return SliceOutcome(again_in=0)
        if not lease_renew(run, token=token):
            return SliceOutcome()  # cancelled, or taken over: nothing more for this delivery to do
        record = item.message
        if record is None:
            item_finished(run, item.pk, ItemOutcome.SKIPPED, detail="no longer in the history")
            continue
        target = to_queue or record.queue
        if not (
            allowed(user, Action.REPLAY, queue=record.queue) and allowed(user, Action.REPLAY, queue=target)
        ):
            # Checked again here: a permission may have been withdrawn since the confirmation.
            detail = f"{run.actor} may not replay messages of {record.queue} to {target}"
            item_finished(run, item.pk, ItemOutcome.SKIPPED, detail=detail)
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
            return SliceOutcome(status=RunStatus.STOPPED, reason=f"{exc.error_code}: {exc.message}")
        if outcome == "replayed":
            item_finished(
                run,
                item.pk,
                ItemOutcome.DONE,
                new_message_id=result["message_id"] or "",
                new_id=result["id"],
                detail="already sent by an earlier attempt" if result["duplicate"] else "",
            )
        else:
            status = ItemOutcome.SKIPPED if outcome == "skipped" else ItemOutcome.FAILED
            item_finished(run, item.pk, status, detail=result.get("reason") or result.get("error", ""))
    return SliceOutcome(status=RunStatus.DONE)


def _in_chunks(items: QuerySet[OperatorRunItem], size: int = 200):
    """The open items, read again a chunk at a time: each one read is given its outcome before the next
    chunk (or the slice ends), so nothing is read twice and no cursor stays open across the sends."""
    last_position = -1
    while chunk := list(items.filter(position__gt=last_position)[:size]):
        yield from chunk
        last_position = chunk[-1].position
