"""A message's life in a worker: claimed once, then exactly one recorded outcome.

SQS delivers at least once, and may hand one message to two workers at once;
the same StandardMessage may even be sent twice. The history row
(sqs_app.models.Message) turns that into one outcome:

- `message_claim` finds (or, for another producer's message, creates) the
  row and takes a **lease** on it in one UPDATE. The lease ends with the SQS
  visibility timeout and is renewed with it while the worker holds the
  message (tasks_app.sqs_transport), so:
  - a delivery that finds the outcome already recorded is a duplicate, and
    is deleted;
  - a delivery that finds a live lease is a concurrent duplicate, and is
    left on the queue until that lease would end;
  - the redelivery after a worker died finds the lease expired, and takes over.
- the outcome functions record succeeded / retrying / failed /
  dead_lettered in one transaction: the row, and the attempt's events
  (received, processing and the outcome, dated when each happened). While an
  attempt runs, the row's status, attempts and lease show it.

On the success path a task costs three SQL statements on PostgreSQL: the
claim, the outcome (its UPDATE and INSERT in one statement), and the task
result (tasks_app.results); four on SQLite, where the outcome is a
transaction of two.
"""

import functools
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from sqs_app.inserts import insert_rows
from sqs_app.models import EventKind, Message, MessageEvent, MessageStatus
from sqs_app.services import dead_letter_send, message_record_new, parse_body, standard_id_of

logger = logging.getLogger(__name__)

WORKER = "worker"
FINISHED = MessageStatus.finished()
# The sources Wipsie itself stamps on what it sends (sqs_app.schemas.SOURCES, but "lambda").
WIPSIE_SOURCES = {"api", "manual", "scheduler"}


@dataclass(frozen=True)
class Delivery:
    """One receipt of an SQS message by a worker (built by tasks_app.worker)."""

    queue: str
    sqs_message_id: str
    receive_count: int
    raw_body: str
    sent_timestamp: int | None = None
    attributes: dict | None = None
    # Read from the body by the worker's main process, for the log lines.
    correlation_id: str | None = None
    standard_id: str | None = None

    @cached_property
    def body(self) -> object:
        """The body, parsed once (sqs_app.services.parse_body)."""
        return parse_body(self.raw_body)

    @property
    def sent_at(self) -> datetime | None:
        if not self.sent_timestamp:
            return None
        return datetime.fromtimestamp(self.sent_timestamp / 1000, tz=UTC)


@dataclass(frozen=True)
class Claim:
    """This delivery's right to process the message, or why it has none."""

    pk: int | None
    body: object
    delivery: Delivery
    attempt: int = 0
    claimed_at: datetime | None = None
    # Not claimed: the outcome is recorded (delete this delivery) ...
    finished: bool = False
    # ... or another delivery holds a live lease (come back after this many seconds).
    held_for_seconds: int = 0

    @property
    def claimed(self) -> bool:
        return self.pk is not None and not self.finished and not self.held_for_seconds


def message_claim(*, delivery: Delivery, task_id: str) -> Claim:
    """Take the message for this delivery, or report why not (see the module docstring)."""
    body = delivery.body
    now = timezone.now()
    lease_until = now + timedelta(seconds=settings.CELERY_VISIBILITY_TIMEOUT)
    standard_id = standard_id_of(body)
    existing = functools.partial(
        _claim_existing, delivery, standard_id, task_id=task_id, now=now, lease_until=lease_until
    )
    new = functools.partial(_claim_new, delivery, body, task_id=task_id, now=now, lease_until=lease_until)
    # Try first what is most likely, so that the common case is one statement:
    # Wipsie's own messages have a row from their send, and so does any
    # message received before; a first receipt from another producer has none.
    # The API writes its row just after SQS accepted the message, so a worker
    # may find no row, then fail to insert one because it has just appeared:
    # the row is then claimed (or not) like any other.
    attempts = (existing, new, existing) if _probably_recorded(delivery, body) else (new, existing)
    claimed = None
    for attempt in attempts:
        claimed = attempt()
        if claimed is not None:
            break
    if claimed is not None:
        pk, attempt = claimed
        return Claim(pk=pk, body=body, delivery=delivery, attempt=attempt, claimed_at=now)
    return _unclaimable(delivery, standard_id, body=body, now=now)


# The claim in one statement: UPDATE ... RETURNING works on PostgreSQL and on
# SQLite (3.35+). It matches the row by SQS's id or by the StandardMessage id
# (the API's row may not have SQS's id yet), and only if no outcome is
# recorded and no live lease is held.
_CLAIM_SQL = """
UPDATE {table} SET
    status = %s,
    lease_expires_at = %s,
    attempts = attempts + 1,
    receive_count = CASE WHEN receive_count < %s THEN %s ELSE receive_count END,
    celery_task_id = %s,
    sqs_message_id = COALESCE(sqs_message_id, %s),
    processing_started_at = COALESCE(processing_started_at, %s),
    next_attempt_at = NULL,
    updated_at = %s
WHERE id = (
    SELECT id FROM {table}
    WHERE (sqs_message_id = %s OR (queue = %s AND standard_id = %s))
    ORDER BY id LIMIT 1
)
AND status NOT IN ({finished})
AND (lease_expires_at IS NULL OR lease_expires_at < %s)
RETURNING id, attempts
"""


def _claim_existing(delivery: Delivery, standard_id, *, task_id, now, lease_until) -> tuple[int, int] | None:
    finished = sorted(FINISHED)
    sql = _CLAIM_SQL.format(table=Message._meta.db_table, finished=", ".join(["%s"] * len(finished)))
    field = Message._meta.get_field
    params = [
        MessageStatus.PROCESSING,
        field("lease_expires_at").get_db_prep_value(lease_until, connection),
        delivery.receive_count,
        delivery.receive_count,
        task_id,
        delivery.sqs_message_id,
        field("processing_started_at").get_db_prep_value(now, connection),
        field("updated_at").get_db_prep_value(now, connection),
        delivery.sqs_message_id,
        delivery.queue,
        field("standard_id").get_db_prep_value(standard_id, connection) if standard_id else None,
        *finished,
        field("lease_expires_at").get_db_prep_value(now, connection),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return (row[0], row[1]) if row else None


def _probably_recorded(delivery: Delivery, body) -> bool:
    if delivery.receive_count > 1:
        return True
    sent_by_wipsie = isinstance(body, dict) and body.get("source") in WIPSIE_SOURCES
    return sent_by_wipsie and standard_id_of(body) is not None


def _claim_new(delivery: Delivery, body, *, task_id, now, lease_until) -> tuple[int, int] | None:
    """A message Wipsie has no row for (another producer's, or the API's insert is not in yet).

    One INSERT ... ON CONFLICT DO NOTHING, no transaction: a row that exists
    already (under either unique key) is claimed, or not, by `_claim_existing`.
    """
    record = message_record_new(
        queue=delivery.queue,
        sqs_message_id=delivery.sqs_message_id,
        body=body,
        attributes=delivery.attributes,
        sent_at=delivery.sent_at,
    )
    record.status = MessageStatus.PROCESSING
    record.lease_expires_at = lease_until
    record.attempts = 1
    record.receive_count = delivery.receive_count
    record.celery_task_id = task_id
    record.processing_started_at = now
    return (record.pk, 1) if insert_rows([record], skip_existing=True) else None


def _unclaimable(delivery: Delivery, standard_id, *, body, now) -> Claim:
    rows = Message.objects.filter(sqs_message_id=delivery.sqs_message_id)
    if standard_id:
        rows = Message.objects.filter(sqs_message_id=delivery.sqs_message_id) | Message.objects.filter(
            queue=delivery.queue, standard_id=standard_id
        )
    record = rows.order_by("id").only("id", "status", "lease_expires_at").first()
    if record is None or record.status in FINISHED:
        return Claim(pk=record and record.pk, body=body, delivery=delivery, finished=True)
    left = (record.lease_expires_at - now).total_seconds() if record.lease_expires_at else 0
    return Claim(pk=record.pk, body=body, delivery=delivery, held_for_seconds=max(1, int(left) + 1))


def leases_renew(*, sqs_message_ids: list[str], seconds: int) -> int:
    """Extend the leases of messages whose visibility was just extended (the worker's main process)."""
    return Message.objects.filter(sqs_message_id__in=sqs_message_ids, status=MessageStatus.PROCESSING).update(
        lease_expires_at=timezone.now() + timedelta(seconds=seconds)
    )


# --- Outcomes ---------------------------------------------------------------------


def message_succeeded(claim: Claim, *, summary: dict | None = None) -> None:
    _record_outcome(claim, MessageStatus.SUCCEEDED, EventKind.SUCCEEDED, error="", **(summary or {}))


def message_retrying(claim: Claim, *, error: str, delay: float) -> None:
    """A temporary failure: the message comes back on its own queue after `delay` seconds."""
    next_attempt_at = timezone.now() + timedelta(seconds=delay)
    _record_outcome(
        claim,
        MessageStatus.RETRYING,
        EventKind.RETRYING,
        error=error,
        next_attempt_at=next_attempt_at,
        retry_in_seconds=delay,
    )


def message_failed(claim: Claim, *, error: str) -> None:
    """A permanent failure: recorded, and the message kept in the DLQ for a replay."""
    dlq_message_id = dead_letter_send(queue=claim.delivery.queue, body=claim.body, error=error, retry_count=0)
    _record_outcome(claim, MessageStatus.FAILED, EventKind.FAILED, error=error, dlq_message_id=dlq_message_id)


def message_dead_lettered(claim: Claim, *, error: str) -> None:
    """Retries ran out: the StandardMessage goes to the DLQ with its retry_count and error."""
    retry_count = claim.attempt - 1
    dlq_message_id = dead_letter_send(
        queue=claim.delivery.queue, body=claim.body, error=error, retry_count=retry_count
    )
    _record_outcome(
        claim,
        MessageStatus.DEAD_LETTERED,
        EventKind.DEAD_LETTERED,
        error=error,
        retry_count=retry_count,
        dlq_message_id=dlq_message_id,
    )


def _record_outcome(
    claim: Claim, status: str, kind: str, *, error: str, next_attempt_at=None, **detail
) -> None:
    """The row's new state and the attempt's events, atomically.

    On PostgreSQL in one statement (`_outcome_in_one_statement`); elsewhere (SQLite)
    in one transaction of two statements.
    """
    now = timezone.now()
    changes = {
        "status": status,
        "last_error": error,
        "lease_expires_at": None,
        "next_attempt_at": next_attempt_at,
        "updated_at": now,
    }
    if status != MessageStatus.RETRYING:
        changes["finished_at"] = now
    delivery = claim.delivery
    events = [
        MessageEvent(
            message_id=claim.pk,
            kind=EventKind.RECEIVED,
            at=claim.claimed_at,
            actor=WORKER,
            detail={"receive_count": delivery.receive_count, "sqs_message_id": delivery.sqs_message_id},
        ),
        MessageEvent(
            message_id=claim.pk,
            kind=EventKind.PROCESSING,
            at=claim.claimed_at,
            actor=WORKER,
            detail={"attempt": claim.attempt},
        ),
        MessageEvent(
            message_id=claim.pk,
            kind=kind,
            at=now,
            actor=WORKER,
            detail={**({"error": error} if error else {}), "attempt": claim.attempt, **detail},
        ),
    ]
    if connection.vendor == "postgresql":
        _outcome_in_one_statement(claim.pk, changes, events)
    else:
        _outcome_in_a_transaction(claim.pk, changes, events)


def _outcome_in_a_transaction(pk: int, changes: dict, events: list[MessageEvent]) -> None:
    with transaction.atomic():
        Message.objects.filter(pk=pk).update(**changes)
        MessageEvent.objects.bulk_create(events)


def _outcome_in_one_statement(pk: int, changes: dict, events: list[MessageEvent]) -> None:
    """UPDATE the row and INSERT its events in one data-modifying statement (PostgreSQL).

    One round trip instead of four (BEGIN, UPDATE, INSERT, COMMIT), and as
    atomic as the transaction: a single statement is all or nothing. The
    columns and values come from the models' own fields, as in
    sqs_app.inserts; the events get their ids in the order given.
    """
    quote = connection.ops.quote_name
    message_pk = quote(Message._meta.pk.column)
    assignments = ", ".join(f"{quote(Message._meta.get_field(name).column)} = %s" for name in changes)
    params = [
        Message._meta.get_field(name).get_db_prep_save(value, connection) for name, value in changes.items()
    ]
    params.append(pk)
    fields = [field for field in MessageEvent._meta.concrete_fields if field.name not in ("id", "message")]
    row = "(%s, " + ", ".join(f"CAST(%s AS {field.db_type(connection)})" for field in fields) + ")"
    for number, event in enumerate(events):
        params.append(number)
        params += [field.get_db_prep_save(field.pre_save(event, True), connection) for field in fields]
    columns = ", ".join(quote(field.column) for field in fields)
    sql = (
        # Only quoted model identifiers are formatted in; every value is a parameter.
        f"WITH changed AS (UPDATE {quote(Message._meta.db_table)} SET {assignments} "  # noqa: S608
        f"WHERE {message_pk} = %s RETURNING {message_pk}) "
        f"INSERT INTO {quote(MessageEvent._meta.db_table)} "
        f"({quote(MessageEvent._meta.get_field('message').column)}, {columns}) "
        f"SELECT changed.{message_pk}, {', '.join(f'event.{quote(field.column)}' for field in fields)} "
        f"FROM changed CROSS JOIN (VALUES {', '.join([row] * len(events))}) AS event(n, {columns}) "
        "ORDER BY event.n"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def duplicate_noted(claim: Claim) -> None:
    """A delivery that found the outcome recorded: noted on the timeline, not processed."""
    if claim.pk is None:
        return
    MessageEvent.objects.create(
        message_id=claim.pk,
        kind=EventKind.RECEIVED,
        actor=WORKER,
        detail={
            "receive_count": claim.delivery.receive_count,
            "sqs_message_id": claim.delivery.sqs_message_id,
            "duplicate": True,
        },
    )
