"""Dead letters: redrive a DLQ's messages to their queue, or delete them (peek.py looks at them).

One walk over a DLQ serves every door: the API's `POST /sqs/dlq/{queue}/redrive`,
`manage.py sqs_redrive` and the admin's background runs (sqs_app.operations.runs).
A walk receives the DLQ ten at a time, keeps what it does not act on hidden
until it ends (so that it meets every message once), then hands those back.
It is

- **bounded**: it looks at most at the DLQ's depth when it starts (or less),
  and acts on at most `limit` messages, or only on the messages chosen;
- **paced**: at most `rate` messages per second (`Pacer`);
- **never twice**: a message it already redrove that comes back (a poison
  message that failed again, under a new SQS id but with its StandardMessage
  id) stops the run and stays in the DLQ;
- **journaled**: what it did, message by message, goes to a journal: in memory
  for one call, in the database for a background run, so that a run resumed
  after its worker was killed finishes what was begun instead of doing it again.
"""

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from .. import errors, services, sqs_client
from ..audit import audited
from ..models import AuditAction, AuditVia, EventKind, ItemOutcome, Message, MessageEvent
from ..queues import CELERY_QUEUE
from .common import Progress, no_progress, operator_queue_require
from .peek import attach_history, dead_letter

POISON_CAME_BACK = "a message replayed in this run failed again and is back in the DLQ"
SQS_WENT_AWAY = "SQS became unreachable"

# --- The walk -----------------------------------------------------------------------------


class Pacer:
    """Keeps a loop at `rate` iterations per second at most (None: as fast as it goes).

    `first_wait`: a run resumed in a new slice waits what is left of the
    interval since its last item, so that slices together keep the rate too.
    """

    def __init__(self, rate: float | None, *, first_wait: float = 0.0):
        self.interval = 1.0 / rate if rate else 0.0
        self.next_at = time.monotonic() + max(0.0, first_wait)

    def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        if now < self.next_at:
            time.sleep(self.next_at - now)
        self.next_at = max(now, self.next_at) + self.interval


@dataclass
class JournalItem:
    dlq_message_id: str
    key: str | None = None
    outcome: str = ItemOutcome.PENDING
    new_message_id: str | None = None
    error: str = ""
    hidden_until: datetime | None = None


class DeadLetterJournal:
    """What a walk over a DLQ has done, message by message (in memory, for one call).

    Acts on at most `limit` messages, or (with `only_ids`) only on those whose
    DLQ message id or StandardMessage id is chosen. A background run keeps
    the same journal in the database (sqs_app.operations.runs.RunJournal).
    """

    def __init__(self, *, limit: int | None = None, only_ids: set[str] | None = None):
        self.limit = limit
        self.only_ids = only_ids
        self.items: dict[str, JournalItem] = {}
        self.first_error: errors.WipsieError | None = None

    # What the walk asks before it acts on a message.
    def item(self, dlq_message_id: str) -> JournalItem | None:
        return self.items.get(dlq_message_id)

    def key_redriven(self, key: str | None) -> bool:
        return bool(key) and any(
            i.key == key and i.outcome in (ItemOutcome.STARTED, ItemOutcome.SENT, ItemOutcome.DONE)
            for i in self.items.values()
        )

    def wants(self, dlq_message_id: str, key: str | None) -> bool:
        """Whether a message met for the first time is one to act on."""
        if self.only_ids is not None:
            return bool({dlq_message_id, key} & self.only_ids)
        return self.limit is None or len(self.items) < self.limit

    def more(self) -> bool:
        """Whether the walk still has something to do: an item begun, a chosen one not met, room for more."""
        if any(i.outcome in (ItemOutcome.STARTED, ItemOutcome.SENT) for i in self.items.values()):
            return True
        if self.only_ids is not None:
            return bool(self.only_ids - self.met())
        return self.limit is None or len(self.items) < self.limit

    def met(self) -> set[str]:
        """The ids (DLQ and StandardMessage) of the messages met and acted on."""
        return {
            value
            for i in self.items.values()
            if i.outcome != ItemOutcome.PENDING
            for value in (i.dlq_message_id, i.key)
            if value
        }

    # What the walk says as it acts, step by step (a RunJournal writes each step down at once).
    def begin(self, dlq_message_id: str, *, key: str | None, hidden_until: datetime) -> None:
        self.items[dlq_message_id] = JournalItem(
            dlq_message_id, key=key, outcome=ItemOutcome.STARTED, hidden_until=hidden_until
        )

    def sent(self, dlq_message_id: str, new_message_id: str) -> None:
        item = self.items[dlq_message_id]
        item.outcome, item.new_message_id = ItemOutcome.SENT, new_message_id

    def finish(
        self,
        dlq_message_id: str,
        outcome: str,
        *,
        new_message_id: str | None = None,
        error: errors.WipsieError | None = None,
    ) -> None:
        item = self.items[dlq_message_id]
        item.outcome = outcome
        item.new_message_id = new_message_id or item.new_message_id
        if error is not None:
            item.error = f"{error.error_code}: {error.message}"
            self.first_error = self.first_error or error

    def halted(self) -> str:
        """Why the walk must stop now ("" to go on): a background run may be cancelled."""
        return ""


# What a walk does to one message: (queue, DLQ url, received message, parsed body, journal) -> new id or None.
Act = Callable[..., str | None]


@dataclass
class Walk:
    looked_at: int = 0
    stopped: str = ""  # why it ended early ("" when it did not)
    out_of_time: bool = False  # its deadline came: a background run goes on in its next slice
    halted: str = ""  # the journal said stop (a background run cancelled)


def dlq_walk(
    *,
    queue: str,
    act: Act,
    journal: DeadLetterJournal,
    look_at_most: int,
    rate: float | None = None,
    first_wait: float = 0.0,
    deadline: float | None = None,
    stop_when_redriven_again: bool = True,
    dry_run: bool = False,
    progress: Progress = no_progress,
) -> Walk:
    """Walk a queue's DLQ, acting on the messages the journal wants; see the module's docstring.

    A message the journal began but did not finish (its worker was killed) is
    finished: a redrive whose send is recorded only has its DLQ copy deleted;
    one begun and not known to be sent is done again (its StandardMessage id
    makes a second copy a duplicate, which the worker's claim processes once).
    """
    walker = _Walker(
        queue=queue,
        dlq=sqs_client.dlq_url(queue),
        act=act,
        journal=journal,
        pacer=Pacer(rate, first_wait=first_wait),
        # Hidden long enough for the slowest batch of ten at the given rate.
        visibility=min(43200, max(60, math.ceil(20 / rate) if rate else 60)),
        stop_when_redriven_again=stop_when_redriven_again,
        dry_run=dry_run,
        progress=progress,
    )
    walk = walker.walk
    handed_back: list[str] = []
    try:
        while walk.looked_at < look_at_most and not (walk.stopped or walk.out_of_time or walk.halted):
            walk.halted = journal.halted()
            if walk.halted or not journal.more():
                break
            batch = sqs_client.receive_messages(
                queue=queue,
                max_messages=min(10, look_at_most - walk.looked_at),
                visibility_timeout=walker.visibility,
                url=walker.dlq,
            )
            if not batch:
                break
            for received in batch:
                if walk.stopped or walk.out_of_time or walk.halted or walk.looked_at >= look_at_most:
                    handed_back.append(received.receipt_handle)
                    continue
                walk.looked_at += 1
                if deadline is not None and time.monotonic() >= deadline:
                    walk.out_of_time = True
                if walk.out_of_time or not walker.step(received):
                    handed_back.append(received.receipt_handle)
                walk.halted = journal.halted()
    finally:
        sqs_client.release_messages_all(queue=queue, receipt_handles=handed_back, url=walker.dlq)
    return walk


@dataclass
class _Walker:
    queue: str
    dlq: str
    act: Act
    journal: DeadLetterJournal
    pacer: Pacer
    visibility: int
    stop_when_redriven_again: bool
    dry_run: bool
    progress: Progress
    walk: Walk = field(default_factory=Walk)

    def step(self, received) -> bool:
        """Deal with one received DLQ message. False: hand it back untouched."""
        journal = self.journal
        body = services.parse_body(received.body)
        key = services.standard_id_of(body)
        item = journal.item(received.message_id)
        outcome = item.outcome if item is not None else None
        if outcome == ItemOutcome.SENT:
            # Sent by an attempt that was stopped before deleting its DLQ copy: finish that.
            sqs_client.delete_message(queue=self.queue, receipt_handle=received.receipt_handle, url=self.dlq)
            journal.finish(received.message_id, ItemOutcome.DONE)
            self.progress(1)
            return True
        if outcome in (ItemOutcome.DONE, ItemOutcome.FAILED, ItemOutcome.SKIPPED):
            return False  # dealt with already (a failed one is met again in a later slice)
        begun = outcome == ItemOutcome.STARTED
        if not begun and self.stop_when_redriven_again and journal.key_redriven(key):
            self.walk.stopped = POISON_CAME_BACK
            return False
        if not begun and not journal.wants(received.message_id, key):
            return False
        if self.dry_run:
            journal.begin(received.message_id, key=key, hidden_until=timezone.now())
            journal.finish(received.message_id, ItemOutcome.DONE)
            self.progress(1)
            return False
        self.pacer.wait()
        hidden_until = timezone.now() + timedelta(seconds=self.visibility)
        journal.begin(received.message_id, key=key, hidden_until=hidden_until)
        try:
            new_id = self.act(queue=self.queue, dlq=self.dlq, received=received, body=body, journal=journal)
        except errors.WipsieError as exc:
            journal.finish(received.message_id, ItemOutcome.FAILED, error=exc)
            if isinstance(exc, errors.SQSUnavailable):
                self.walk.stopped = SQS_WENT_AWAY
            self.progress(1)
            return False
        journal.finish(received.message_id, ItemOutcome.DONE, new_message_id=new_id)
        self.progress(1)
        return True


# --- What a walk does to each message --------------------------------------------------------


def redrive_act(*, actor: str) -> Act:
    """Put a dead letter back on its queue: reset its history, send, record the send, delete the DLQ copy.

    The history row is reset *before* the send, so that a worker taking the
    message at once does not see an old outcome and skip it as a duplicate; the
    DLQ copy is deleted only after the send, so a crash in between duplicates
    the message (the journal knows it was sent if the crash came after that
    was recorded) rather than losing it.
    """

    def redrive(*, queue: str, dlq: str, received, body, journal: DeadLetterJournal) -> str:
        if queue == CELERY_QUEUE:
            # Celery's own task messages: no history to reset, the body is kombu's envelope.
            new_id = sqs_client.send_message(queue=queue, body=received.body, attributes=received.attributes)
        else:
            if isinstance(body, dict):
                body = {key: value for key, value in body.items() if key != "last_error"}
            record = services.message_replay_record(queue=queue, body=body, actor=actor)
            encoded = json.dumps(body) if isinstance(body, dict) else received.body
            new_id = sqs_client.send_message(queue=queue, body=encoded)
            if record is not None:
                Message.objects.filter(pk=record.pk).update(sqs_message_id=new_id)
        journal.sent(received.message_id, new_id)
        sqs_client.delete_message(queue=queue, receipt_handle=received.receipt_handle, url=dlq)
        return new_id

    return redrive


def delete_act(*, actor: str) -> Act:
    """Delete a dead letter from its DLQ, and say so on its history row's timeline."""

    def delete(*, queue: str, dlq: str, received, body, journal: DeadLetterJournal) -> None:
        sqs_client.delete_message(queue=queue, receipt_handle=received.receipt_handle, url=dlq)
        letter = dead_letter(received)
        if queue != CELERY_QUEUE:
            attach_history(queue, [letter])
        if letter.record is not None:
            MessageEvent.objects.create(
                message=letter.record,
                kind=EventKind.DELETED,
                actor=actor,
                detail={"dlq_message_id": received.message_id, "from": "dead-letter queue"},
            )
        return None

    return delete


# --- Redrive in one call: the API and sqs_redrive ----------------------------------------------


@dataclass
class RedriveReport:
    queue: str
    dlq_depth_at_start: int
    dry_run: bool
    looked_at: int = 0
    replayed: list[dict] = field(default_factory=list)  # {"dlq_message_id", "message_id", "id"}
    failed: list[dict] = field(default_factory=list)  # {"dlq_message_id", "error"}
    # Why the run ended before its bound, if it did ("" when it ran to the end).
    stopped: str = ""
    not_found: list[str] = field(default_factory=list)  # chosen ids that were not in the DLQ
    first_error: errors.WipsieError | None = None


def dlq_redrive_run(
    *,
    queue: str,
    limit: int | None = None,
    only_ids: set[str] | None = None,
    rate: float | None = None,
    dry_run: bool = False,
    replayed_by=None,
    actor: str = "",
    via: AuditVia | None = None,
    progress: Progress = no_progress,
) -> RedriveReport:
    """Move dead letters back onto their queue: at most `limit` (or `only_ids`), at most `rate` a second.

    Looks at most at the DLQ's depth when it starts (and at most `limit`
    messages); see the module's docstring. A dry run receives and lists the
    messages, then hands them all back untouched, and is not audited.
    """
    operator_queue_require(queue)
    actor = actor or getattr(replayed_by, "username", "")
    with audited(action=AuditAction.REDRIVE, via=via, user=replayed_by, actor=actor, queue=queue) as note:
        depth = sqs_client.queue_depths(queue, dead_letters=True)["visible"]
        journal = DeadLetterJournal(limit=limit, only_ids=only_ids)
        walk = dlq_walk(
            queue=queue,
            act=redrive_act(actor=actor),
            journal=journal,
            look_at_most=depth if limit is None else min(limit, depth),
            rate=rate,
            dry_run=dry_run,
            progress=progress,
        )
        report = _redrive_report(queue=queue, depth=depth, dry_run=dry_run, walk=walk, journal=journal)
        note.skip = dry_run
        note.message_ids = [item["message_id"] for item in report.replayed]
        note.succeeded = not (report.failed or report.not_found)
        note.detail = {
            "failed": len(report.failed),
            "rate": rate,
            "limit": limit,
            "stopped": report.stopped,
            **({"requested_ids": sorted(only_ids), "not_found": report.not_found} if only_ids else {}),
        }
    return report


def _redrive_report(*, queue, depth, dry_run, walk: Walk, journal: DeadLetterJournal) -> RedriveReport:
    report = RedriveReport(
        queue=queue, dlq_depth_at_start=depth, dry_run=dry_run, looked_at=walk.looked_at, stopped=walk.stopped
    )
    for item in journal.items.values():
        if item.outcome == ItemOutcome.DONE:
            report.replayed.append(
                {"dlq_message_id": item.dlq_message_id, "message_id": item.new_message_id, "id": item.key}
            )
        elif item.outcome == ItemOutcome.FAILED:
            report.failed.append({"dlq_message_id": item.dlq_message_id, "error": item.error})
    if journal.only_ids:
        report.not_found = sorted(journal.only_ids - journal.met())
    report.first_error = journal.first_error
    return report
