"""Actions on messages: send, receive, delete, record what happened.

The API, the admin, the management commands and the workers all act through
these functions; none of them calls SQS or writes history on its own.

Sending writes twice, SQS and the database. The order depends on who chose the
message's StandardMessage `id`:

- **A fresh id** (Wipsie's own uuid4: almost every send). SQS first, then the
  history row is inserted already `sent`, with SQS's MessageId, and its `sent`
  event: one statement on PostgreSQL, two on SQLite, no transaction around
  them. A uuid4 cannot already be in the history, so there is nothing to
  reserve or look up before the send.
  If the database fails after SQS accepted the message (it is down, the process
  is killed), the send still succeeds: the failure is logged, and the row is
  created from the message's own body the next time anyone sees it (a worker or
  /sqs/receive, `message_record_received`, which finds rows by SQS's id and by
  the StandardMessage id). A worker may even see the message before the insert
  lands and create the row itself; the insert then only completes that row
  (who sent it, when) and keeps the worker's status, never moving it backwards.
- **An id the caller chose** (a client that may retry, the admin). A `pending`
  row is reserved first, in its own transaction; if the database is down the
  send is refused before anything reaches SQS. A retry with the same id finds
  the row and gets the original back: nothing is sent twice. Then SQS; if it
  refuses, the pending row is removed again. Then the row is confirmed `sent`;
  if that fails, the send still succeeds and the pending row is settled the
  next time anyone sees the message.

Either way a send never fails after SQS accepted it, no accepted message is
lost, and the `sent` event is dated when the send began, before any worker can
have seen the message, so that the timeline (ordered by time) stays in order.
"""

import contextlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from . import errors, sqs_client
from .audit import audited
from .inserts import insert_rows, prepared_insert
from .metrics import MESSAGES_DELETED, MESSAGES_RECEIVED, MESSAGES_SENT
from .models import AuditAction, AuditVia, EventKind, Message, MessageEvent, MessageStatus
from .queues import LOGICAL_QUEUES, is_known_queue
from .schemas import (
    MAX_DEPTH,
    attributes_size,
    build_standard_message,
    json_problems,
    json_text_depth_exceeds,
)

logger = logging.getLogger(__name__)


def queue_require(name: str) -> str:
    """The logical queue name, or QUEUE_NOT_FOUND naming the queues that exist."""
    if not is_known_queue(name):
        raise errors.QueueNotFound(details={"queue_name": name, "available_queues": list(LOGICAL_QUEUES)})
    return name


# --- Sending ---------------------------------------------------------------------


@dataclass
class OutgoingMessage:
    """One message on its way to SQS, and its history row."""

    body: dict
    encoded_body: str
    attributes: dict
    record: Message | None = None
    message_id: str | None = None  # SQS's MessageId, once accepted
    error: errors.WipsieError | None = None
    duplicate: bool = False  # same StandardMessage id already sent: not sent again
    # Only an id the caller chose can already exist; a fresh uuid4 needs no lookup.
    caller_chose_id: bool = False


def outgoing_message(*, queue: str, message: dict, attributes: dict, source: str) -> OutgoingMessage:
    """Build the StandardMessage body for a validated message and check its size."""
    body = build_standard_message(message=message, queue=queue, source=source)
    encoded = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    size = len(encoded.encode()) + attributes_size(attributes)
    message_too_large_check(size)
    return OutgoingMessage(
        body=body, encoded_body=encoded, attributes=attributes, caller_chose_id=bool(message.get("id"))
    )


def message_too_large_check(size: int, *, what: str = "message") -> None:
    limit = settings.SQS_MAX_MESSAGE_BYTES
    if size > limit:
        raise errors.MessageTooLarge(
            f"The {what} is {size} bytes; SQS accepts at most {limit} bytes.",
            details={"size_bytes": size, "max_bytes": limit},
        )


def message_send(
    *,
    queue: str,
    message: dict,
    attributes: dict | None = None,
    sent_by=None,
    source: str = "api",
    delay_seconds: int = 0,
    via: AuditVia | None = None,
    actor: str = "",
) -> OutgoingMessage:
    """Send one StandardMessage with SendMessage and record it. Raises on failure.

    `delay_seconds` (0-900, SQS's DelaySeconds) keeps it invisible that long.
    `via` names the operator's door, for the audit log (sqs_app.audit).
    """
    with audited(action=AuditAction.SEND, via=via, user=sent_by, actor=actor, queue=queue) as note:
        outgoing = _message_send(
            queue=queue,
            message=message,
            attributes=attributes or {},
            sent_by=sent_by,
            source=source,
            delay_seconds=delay_seconds,
        )
        note.message_ids = [outgoing.message_id]
        if outgoing.duplicate:
            note.detail["duplicate"] = True  # nothing was sent: SQS had it already
        if delay_seconds:
            note.detail["delay_seconds"] = delay_seconds
    return outgoing


def _message_send(
    *, queue: str, message: dict, attributes: dict, sent_by, source: str, delay_seconds: int
) -> OutgoingMessage:
    queue_require(queue)
    outgoing = outgoing_message(queue=queue, message=message, attributes=attributes, source=source)
    _reserve(queue=queue, batch=[outgoing], sent_by=sent_by)
    if outgoing.duplicate:
        return outgoing
    sent_at = timezone.now()
    try:
        outgoing.message_id = sqs_client.send_message(
            queue=queue,
            body=outgoing.encoded_body,
            attributes=outgoing.attributes,
            delay_seconds=delay_seconds,
        )
    except errors.WipsieError:
        _release([outgoing])
        raise
    _record_sent([outgoing], queue=queue, sent_by=sent_by, sent_at=sent_at)
    return outgoing


def message_send_batch(*, queue: str, batch: list[OutgoingMessage], sent_by=None) -> list[OutgoingMessage]:
    """Send up to ten prepared messages in one SendMessageBatch call.

    Entries fail or succeed one by one (SQS's batch semantics): a failed entry
    carries its `error`, and nothing of it stays in the history.
    """
    queue_require(queue)
    message_too_large_check(
        sum(len(m.encoded_body.encode()) + attributes_size(m.attributes) for m in batch),
        what="batch",
    )
    _reserve(queue=queue, batch=batch, sent_by=sent_by)
    to_send = {str(index): m for index, m in enumerate(batch) if not m.duplicate}
    if to_send:
        entries = [
            {"Id": entry_id, "MessageBody": m.encoded_body}
            | ({"MessageAttributes": m.attributes} if m.attributes else {})
            for entry_id, m in to_send.items()
        ]
        sent_at = timezone.now()
        try:
            results = sqs_client.send_message_batch(queue=queue, entries=entries)
        except errors.WipsieError:
            _release(list(to_send.values()))
            raise
        for result in results:
            outgoing = to_send[result.entry_id]
            if result.message_id:
                outgoing.message_id = result.message_id
            else:
                outgoing.error = errors.SQSRequestFailed(
                    f"Amazon SQS rejected the message: {result.error_message}",
                    details={"sqs_error_code": result.error_code},
                )
        _release([m for m in to_send.values() if m.error])
        accepted = [m for m in to_send.values() if m.message_id]
        _record_sent(accepted, queue=queue, sent_by=sent_by, sent_at=sent_at)
    return batch


def _actor(user) -> str:
    return getattr(user, "username", "") or ""


def _reserve(*, queue: str, batch: list[OutgoingMessage], sent_by) -> None:
    """Reserve pending rows for the ids callers chose. A StandardMessage id already sent is a duplicate.

    Fresh ids need no reservation and cost no statement here: a uuid4 Wipsie
    just made cannot be in the history, so nothing can be a duplicate of it.
    """
    ids = [m.body["id"] for m in batch]
    if len(set(ids)) != len(ids):
        raise errors.ValidationFailed("Two messages in one batch carry the same id.", details={"ids": ids})
    chosen = [m for m in batch if m.caller_chose_id]
    if not chosen:
        return
    try:
        _reserve_rows(queue=queue, batch=chosen, sent_by=sent_by)
    except DatabaseError as exc:
        # A refusal like any other, so that every caller (the admin, the poll
        # scheduler) handles it as one: nothing was sent.
        raise errors.DatabaseUnavailable("The database could not be reached; nothing was sent.") from exc


def _reserve_rows(*, queue: str, batch: list[OutgoingMessage], sent_by) -> None:
    ids = [m.body["id"] for m in batch]
    with transaction.atomic():
        existing = {
            str(m.standard_id): m
            for m in Message.objects.select_for_update().filter(queue=queue, standard_id__in=ids)
        }
        new_rows = []
        for outgoing in batch:
            record = existing.get(outgoing.body["id"])
            if record is None:
                record = _history_row(outgoing, queue=queue, sent_by=sent_by, status=MessageStatus.PENDING)
                new_rows.append(record)
            elif record.status != MessageStatus.PENDING:
                # A client retrying a send it thinks was lost: answer with the
                # message SQS already has instead of sending it a second time.
                outgoing.duplicate = True
                outgoing.message_id = record.sqs_message_id
                outgoing.body = record.body
            outgoing.record = record
        try:
            Message.objects.bulk_create(new_rows)
        except IntegrityError as exc:
            # A concurrent request reserved the same id a moment ago.
            raise errors.ValidationFailed(
                "A message with this id is being sent right now; retry the request.",
                details={"ids": ids},
            ) from exc


def _history_row(outgoing: OutgoingMessage, *, queue: str, sent_by, status: str, sent_at=None) -> Message:
    body = outgoing.body
    return Message(
        standard_id=body["id"],
        queue=queue,
        body=body,
        attributes=outgoing.attributes,
        task_type=_str(body.get("task_type")),
        priority=_str(body.get("priority")),
        correlation_id=_str(body.get("correlation_id"))[:128],
        source=body["source"],
        sent_by=sent_by,
        status=status,
        sqs_message_id=outgoing.message_id,
        sent_at=sent_at,
    )


def _release(batch: list[OutgoingMessage]) -> None:
    """SQS refused these: remove their pending rows so nothing stays half-written.

    Only reserved rows exist at this point; a fresh id has no row until SQS accepted it.
    """
    pks = [m.record.pk for m in batch if m.record and m.record.pk and not m.duplicate]
    if pks:
        Message.objects.filter(pk__in=pks, status=MessageStatus.PENDING).delete()


def _record_sent(batch: list[OutgoingMessage], *, queue: str, sent_by, sent_at) -> None:
    """Write the history of messages SQS accepted. Never raises: SQS has them already.

    A message whose row or event is missing after a failure here is recorded
    when next seen (see the module's docstring), as if the whole write had failed.
    """
    if not batch:
        return
    for outgoing in batch:
        MESSAGES_SENT.labels(queue=queue, source=outgoing.body["source"]).inc()
    try:
        if len(batch) == 1:
            _record_one_sent(batch[0], queue=queue, sent_by=sent_by, sent_at=sent_at)
        else:
            _record_many_sent(batch, queue=queue, sent_by=sent_by, sent_at=sent_at)
    except DatabaseError:
        logger.exception(
            "SQS accepted messages but their history could not be written; it is recorded when "
            "they are next seen",
            extra={"sqs_message_ids": [m.message_id for m in batch]},
        )


def _record_one_sent(outgoing: OutgoingMessage, *, queue: str, sent_by, sent_at) -> None:
    """The row and its `sent` event: one statement on PostgreSQL, two elsewhere; no transaction.

    A transaction would cost a BEGIN and a COMMIT round trip for nothing: a
    crash between two statements leaves a `sent` row without its `sent` event,
    which loses no message and breaks no order (the timeline only misses that
    line). On PostgreSQL a fresh id's row and event are one statement anyway,
    so they land together or not at all, in one round trip.
    """
    with _savepoint_if_nested():
        if outgoing.record is None:
            _insert_sent([outgoing], queue=queue, sent_by=sent_by, sent_at=sent_at)
        else:
            _confirm_reserved_rows([outgoing], sent_at=sent_at)
            _insert_sent_events([outgoing], sent_by=sent_by, sent_at=sent_at)


def _record_many_sent(batch: list[OutgoingMessage], *, queue: str, sent_by, sent_at) -> None:
    """A batch's rows and events, recorded whole or not at all, with one BEGIN and COMMIT at most.

    Fresh ids alone on PostgreSQL are one statement, atomic without a transaction.
    """
    fresh = [m for m in batch if m.record is None]
    reserved = [m for m in batch if m.record is not None]
    one_statement = not reserved and _rows_and_events_in_one_statement()
    with _savepoint_if_nested() if one_statement else transaction.atomic():
        if fresh:
            _insert_sent(fresh, queue=queue, sent_by=sent_by, sent_at=sent_at)
        if reserved:
            _confirm_reserved_rows(reserved, sent_at=sent_at)
            _insert_sent_events(reserved, sent_by=sent_by, sent_at=sent_at)


def _rows_and_events_in_one_statement() -> bool:
    """PostgreSQL runs an INSERT inside a WITH clause; SQLite does not."""
    return connection.vendor == "postgresql"


# Every field _history_row sets, and the two times: the rest take the model's defaults.
_SENT_ROW_FIELDS = (
    "standard_id",
    "queue",
    "body",
    "attributes",
    "task_type",
    "priority",
    "correlation_id",
    "source",
    "sent_by_id",
    "status",
    "sqs_message_id",
    "sent_at",
    "created_at",
    "updated_at",
)
# The sender's own fields: what a row a worker made first lacks (see _insert_sent).
_SENDER_FIELDS = ("sent_by", "sent_at", "updated_at")
# How the `sent` events are computed from the rows just written, in the same statement.
_SENT_EVENT_FROM_ROW = {
    "message_id": '"id"',
    "detail": "jsonb_build_object('sqs_message_id', \"sqs_message_id\")",
}


def _insert_sent(batch: list[OutgoingMessage], *, queue: str, sent_by, sent_at) -> None:
    """Fresh ids' rows, inserted as `sent` (or completing a row a worker made first), and their events.

    A worker that takes a message off the queue before this insert lands
    creates its row from the body, with the same (queue, standard_id). On that
    unique constraint the insert becomes an update of the sender's own fields
    (who sent it, when): the row keeps the worker's status, never moved
    backwards, and its id comes back either way, for the `sent` event.

    On PostgreSQL the rows' INSERT sits in a WITH clause and the events' INSERT
    selects from the rows it returned: one statement, atomic, one round trip,
    for one message or a batch of ten. Elsewhere the events are a second INSERT.
    The SQL and the defaults are prepared once per process
    (sqs_app.inserts.prepared_insert).
    """
    now = timezone.now()
    rows = [
        _history_row(m, queue=queue, sent_by=sent_by, status=MessageStatus.SENT, sent_at=sent_at)
        for m in batch
    ]
    for row in rows:
        row.created_at = row.updated_at = now
    rows_sql, params = prepared_insert(
        Message,
        [{field: getattr(row, field) for field in _SENT_ROW_FIELDS} for row in rows],
        on_conflict=("queue", "standard_id"),
        update=_SENDER_FIELDS,
        returning=("id", "standard_id", "sqs_message_id"),
    )
    statement = rows_sql
    one_statement = _rows_and_events_in_one_statement()
    if one_statement:
        events_sql, events_params = prepared_insert(
            MessageEvent,
            [{"kind": EventKind.SENT, "at": sent_at, "actor": _actor(sent_by)}],
            select_from=("sent_rows", _SENT_EVENT_FROM_ROW),
        )
        # Both parts are prepared_insert's SQL: identifiers and placeholders, never data.
        statement = f"WITH sent_rows AS ({rows_sql}), sent_events AS ({events_sql}) SELECT * FROM sent_rows"  # noqa: S608
        params += events_params
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        # A UUID on PostgreSQL, 32 hex digits on SQLite: read back as the field reads it.
        as_uuid = Message._meta.get_field("standard_id").to_python
        pks = {str(as_uuid(standard_id)): pk for pk, standard_id, _ in cursor.fetchall()}
    for outgoing, row in zip(batch, rows, strict=True):
        row.pk = pks[outgoing.body["id"]]
        row._state.adding = False
        row._state.db = connection.alias
        outgoing.record = row
    if not one_statement:
        _insert_sent_events(batch, sent_by=sent_by, sent_at=sent_at)


def _insert_sent_events(batch: list[OutgoingMessage], *, sent_by, sent_at) -> None:
    actor = _actor(sent_by)
    insert_rows(
        [
            MessageEvent(
                message=m.record,
                kind=EventKind.SENT,
                at=sent_at,
                actor=actor,
                detail={"sqs_message_id": m.message_id},
            )
            for m in batch
        ]
    )


def _confirm_reserved_rows(batch: list[OutgoingMessage], *, sent_at) -> None:
    """Mark reserved rows sent, with SQS's MessageIds.

    A worker may take a message off the queue before this runs, and move its
    row on (received, processing, even succeeded). So the status goes to
    `sent` only from `pending`.
    """
    records = []
    for outgoing in batch:
        record = outgoing.record
        record.sqs_message_id = outgoing.message_id
        record.sent_at = sent_at
        records.append(record)
    Message.objects.filter(pk__in=[r.pk for r in records]).update(
        sqs_message_id=Case(*[When(pk=r.pk, then=Value(r.sqs_message_id)) for r in records]),
        status=Case(When(status=MessageStatus.PENDING, then=Value(MessageStatus.SENT)), default=F("status")),
        sent_at=sent_at,
        updated_at=timezone.now(),
    )


@contextlib.contextmanager
def _savepoint_if_nested():
    """A savepoint when the caller has a transaction open, else nothing.

    PostgreSQL aborts a whole transaction on the first failed statement; a
    savepoint keeps a failed history write from breaking the caller's. Outside
    a transaction each statement commits on its own, with no round trip added.
    """
    if connection.in_atomic_block:
        with transaction.atomic():
            yield
    else:
        yield


def _str(value) -> str:
    return value if isinstance(value, str) else ""


# --- Receiving and deleting --------------------------------------------------------


@dataclass(frozen=True)
class DeliveredMessage:
    """A message handed to an API client by /sqs/receive."""

    message_id: str
    body: object
    attributes: dict
    receipt_handle: str
    record: Message


def parse_body(raw: str) -> object:
    """The body as JSON when it is JSON Wipsie can keep, else the raw string (other producers).

    JSON that no message may carry (a NUL character, a number out of range,
    nesting too deep: sqs_app.schemas.json_problems) is kept as the raw string
    it arrived as, so that it is still recorded, failed with a reason, and kept.
    """
    if json_text_depth_exceeds(raw, MAX_DEPTH):
        return raw
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return raw if json_problems(value) else value


def body_problem(raw: str) -> str | None:
    """Why a body that is JSON cannot be handled as JSON ("data.note: ..."); None when it can."""
    if json_text_depth_exceeds(raw, MAX_DEPTH):
        return f"Nested deeper than {MAX_DEPTH} levels."
    try:
        problems = json_problems(json.loads(raw))
    except ValueError:
        return None
    if not problems:
        return None
    path, reason = problems[0]
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path).lstrip(".")
    return f"{where}: {reason}" if where else reason


def messages_receive(
    *,
    queue: str,
    max_messages: int = 1,
    wait_time_seconds: int = 0,
    visibility_timeout: int | None = None,
    received_by=None,
) -> list[DeliveredMessage]:
    queue_require(queue)
    received = sqs_client.receive_messages(
        queue=queue,
        max_messages=max_messages,
        wait_time_seconds=wait_time_seconds,
        visibility_timeout=visibility_timeout,
    )
    MESSAGES_RECEIVED.labels(queue=queue).inc(len(received))
    delivered = []
    try:
        with transaction.atomic():
            for raw in received:
                body = parse_body(raw.body)
                record = message_record_received(
                    queue=queue,
                    sqs_message_id=raw.message_id,
                    body=body,
                    actor=_actor(received_by),
                    receive_count=int(raw.system_attributes.get("ApproximateReceiveCount", 1)),
                    receipt_handle=raw.receipt_handle,
                    attributes=raw.attributes,
                    sent_at=_sent_timestamp(raw.system_attributes),
                )
                delivered.append(
                    DeliveredMessage(raw.message_id, body, raw.attributes, raw.receipt_handle, record)
                )
    except DatabaseError as exc:
        # Hand the messages straight back to SQS rather than hiding them for a
        # whole visibility timeout from every other consumer.
        sqs_client.release_messages(queue=queue, receipt_handles=[m.receipt_handle for m in received])
        raise errors.DatabaseUnavailable(
            "The messages could not be recorded and were returned to the queue."
        ) from exc
    return delivered


def message_record_find(*, queue: str, sqs_message_id: str, body: object) -> Message | None:
    """The history row of a message, by SQS's id or, failing that, the StandardMessage id."""
    record = Message.objects.filter(sqs_message_id=sqs_message_id).first()
    standard_id = standard_id_of(body)
    if record is None and standard_id:
        record = Message.objects.filter(queue=queue, standard_id=standard_id).first()
    return record


def message_record_new(
    *, queue: str, sqs_message_id: str, body: object, attributes: dict | None = None, sent_at=None
) -> Message:
    """An unsaved history row for a message Wipsie did not send (another producer)."""
    fields = body if isinstance(body, dict) else {}
    return Message(
        queue=queue,
        sqs_message_id=sqs_message_id,
        standard_id=standard_id_of(body),
        body=body,
        attributes=attributes or {},
        task_type=_str(fields.get("task_type"))[:100],
        priority=_str(fields.get("priority"))[:10],
        correlation_id=_str(fields.get("correlation_id"))[:128],
        source=_str(fields.get("source"))[:20],
        sent_at=sent_at,
    )


def message_record_received(
    *,
    queue: str,
    sqs_message_id: str,
    body: object,
    actor: str,
    receive_count: int = 1,
    receipt_handle: str = "",
    attributes: dict | None = None,
    sent_at=None,
) -> Message:
    """Record a receive, by an API client or a worker. Returns the message's history row.

    A message from another producer (a Lambda, the console, plain boto3) gets
    its first row here, keyed by SQS's id, and by the StandardMessage id when
    its body carries one. A message whose outcome is already recorded keeps
    its status: the delivery is only noted, as a duplicate.
    """
    with transaction.atomic():
        found = message_record_find(queue=queue, sqs_message_id=sqs_message_id, body=body)
        if found is None:
            record = message_record_new(
                queue=queue, sqs_message_id=sqs_message_id, body=body, attributes=attributes, sent_at=sent_at
            )
        else:
            record = Message.objects.select_for_update().get(pk=found.pk)
        detail = {"receive_count": receive_count, "sqs_message_id": sqs_message_id}
        if record.status in MessageStatus.finished():
            detail["duplicate"] = True
        elif record.status in (MessageStatus.PENDING, MessageStatus.SENT, MessageStatus.RECEIVED):
            record.status = MessageStatus.RECEIVED
        record.sqs_message_id = record.sqs_message_id or sqs_message_id
        record.receipt_handle = receipt_handle or record.receipt_handle
        record.receive_count = max(record.receive_count, receive_count)
        record.save()
        MessageEvent.objects.create(message=record, kind=EventKind.RECEIVED, actor=actor, detail=detail)
    return record


def message_delete(
    *, queue: str, receipt_handle: str, deleted_by=None, via: AuditVia | None = None, actor: str = ""
) -> Message | None:
    """Delete a received message from SQS by its receipt handle, then record it.

    SQS first: once it has deleted the message, the delete has happened, and a
    failure to record it is logged rather than reported as a failed delete.
    """
    queue_require(queue)
    if not receipt_handle:
        raise errors.InvalidReceiptHandle("receipt_handle is required.")
    with audited(action=AuditAction.DELETE, via=via, user=deleted_by, actor=actor, queue=queue) as note:
        sqs_client.delete_message(queue=queue, receipt_handle=receipt_handle)
        record = _record_deleted(
            queue=queue, receipt_handle=receipt_handle, actor=actor or _actor(deleted_by)
        )
        note.message_ids = [record.sqs_message_id] if record else []
        note.count = 1
    return record


def _record_deleted(*, queue: str, receipt_handle: str, actor: str) -> Message | None:
    MESSAGES_DELETED.labels(queue=queue).inc()
    try:
        with transaction.atomic():
            record = Message.objects.filter(queue=queue, receipt_handle=receipt_handle).first()
            if record is not None:
                record.status = MessageStatus.DELETED
                record.save(update_fields=["status", "updated_at"])
                MessageEvent.objects.create(message=record, kind=EventKind.DELETED, actor=actor)
            return record
    except DatabaseError:
        logger.exception("Deleted a message from SQS but could not record the delete")
        return None


def standard_id_of(body: object) -> str | None:
    """The StandardMessage `id` a body carries, if it carries a valid one."""
    value = body.get("id") if isinstance(body, dict) else None
    if not isinstance(value, str):
        return None
    try:
        uuid.UUID(value)
    except ValueError:
        return None
    return value


def _sent_timestamp(system_attributes: dict):
    millis = system_attributes.get("SentTimestamp")
    return datetime.fromtimestamp(int(millis) / 1000, tz=UTC) if millis else None


# --- Dead letters and replays -------------------------------------------------------------

DLQ_ERROR_ATTRIBUTE = "wipsie_last_error"


def dead_letter_send(*, queue: str, body: object, error: str, retry_count: int) -> str:
    """Put a message on its queue's DLQ with its retry_count and last error. Returns the DLQ id.

    A StandardMessage carries both in its body (the spec's `retry_count`); a
    body from another producer that is not a JSON object is kept byte for
    byte, and the error travels as a message attribute.
    """
    if isinstance(body, dict):
        encoded = json.dumps({**body, "retry_count": retry_count, "last_error": error})
    else:
        encoded = body if isinstance(body, str) else json.dumps(body)
    attributes = {
        DLQ_ERROR_ATTRIBUTE: {"DataType": "String", "StringValue": error[:1000] or "unknown"},
        "wipsie_retry_count": {"DataType": "Number", "StringValue": str(retry_count)},
    }
    return sqs_client.send_message(
        queue=queue, body=encoded, attributes=attributes, url=sqs_client.dlq_url(queue)
    )


def message_replay_record(*, queue: str, body: object, actor: str) -> Message | None:
    """Reset a message's history for a replay: it may be processed once more."""
    standard_id = standard_id_of(body)
    with transaction.atomic():
        if standard_id is not None:
            record = Message.objects.select_for_update().filter(queue=queue, standard_id=standard_id).first()
        else:
            record = _record_of_dead_letter_without_id(queue=queue, body=body)
        if record is None:
            return None
        previous = record.status
        record.status = MessageStatus.SENT
        record.celery_task_id = ""
        record.sqs_message_id = None
        record.finished_at = None
        record.save()
        MessageEvent.objects.create(
            message=record, kind=EventKind.REPLAYED, actor=actor, detail={"previous_status": previous}
        )
    return record


def _record_of_dead_letter_without_id(*, queue: str, body: object) -> Message | None:
    """The failed row of a body that carries no StandardMessage id (another producer's).

    Found by its body, as stored, or as dead_letter_send extended it; so that a
    replay settles that row instead of leaving it failed and starting a new one.
    """
    candidates = [body]
    if isinstance(body, dict):
        candidates.append({k: v for k, v in body.items() if k not in ("retry_count", "last_error")})
    failed = Message.objects.select_for_update().filter(
        queue=queue, status__in=[MessageStatus.FAILED, MessageStatus.DEAD_LETTERED], standard_id__isnull=True
    )
    for candidate in candidates:
        record = failed.filter(body=candidate).order_by("-created_at").first()
        if record is not None:
            return record
    return None


# --- The test message ---------------------------------------------------------------


def test_message_build() -> dict:
    return {
        "type": "test",
        "message": "Hello from Wipsie!",
        "source": "api_test",
        "data": {
            "test_id": "api-test-001",
            "description": "Testing SQS integration via the Wipsie API",
        },
    }


def test_message_send(
    *, sent_by=None, source: str = "api", via: AuditVia | None = None, actor: str = ""
) -> tuple[dict, OutgoingMessage]:
    test_message = test_message_build()
    with audited(action=AuditAction.SEND, via=via, user=sent_by, actor=actor, queue="default") as note:
        outgoing = message_send(queue="default", message=test_message, sent_by=sent_by, source=source)
        note.message_ids, note.detail = [outgoing.message_id], {"test": True}
    return test_message, outgoing
