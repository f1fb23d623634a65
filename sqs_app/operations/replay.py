"""Replay from the history: a recorded message's body sent again, as a new message.

A replay is a new message with a new id (source `manual`), linked to its
original (`Message.replay_of`, and `replay_of` in its body) and keeping its
correlation id, so one search finds both. The original row keeps its ids and
history, and gets a `replayed` event naming the new message.
"""

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from .. import errors, selectors, services
from ..audit import audited
from ..models import AuditAction, AuditVia, EventKind, Message, MessageEvent
from ..schemas import StandardMessageSerializer
from .common import Progress, no_progress

# Keys Wipsie sets on every send, or that describe a past attempt: a replay gets new ones.
NOT_REPLAYED_KEYS = {"id", "timestamp", "source", "queue", "retry_count", "last_error", "replay_of"}


@dataclass
class ReplayReport:
    # {"original", "message_id", "id", "queue", "duplicate"}
    replayed: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {"original", "reason"}
    failed: list[dict] = field(default_factory=list)  # {"original", "error"}


@dataclass
class Replay:
    """One replay done: the new message, and whether it had been sent already (a repeat)."""

    message_id: str | None
    id: str
    queue: str
    duplicate: bool
    record: Message | None

    def as_dict(self) -> dict:
        return {
            "message_id": self.message_id,
            "id": self.id,
            "queue": self.queue,
            "duplicate": self.duplicate,
        }


def replay_candidates(
    *,
    ids: list[str] | None = None,
    queue: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[Message]:
    """The history rows a replay acts on: the given ids, or the newest `limit` matching the filter."""
    if ids:
        return [selectors.message_get(message_id=message_id) for message_id in ids]
    messages = selectors.message_list(queue=queue, status=status, created_after=since)
    return list(messages[:limit])


def original_id_of(record: Message) -> str:
    return str(record.standard_id or record.sqs_message_id or record.pk)


def messages_replay(
    *,
    records: list[Message],
    to_queue: str | None = None,
    replayed_by=None,
    actor: str = "",
    via: AuditVia | None = None,
    progress: Progress = no_progress,
) -> ReplayReport:
    """Replay each message (see message_replay); a body that cannot be replayed is skipped with the reason.

    Stops at the first SQS or database outage (raised, after the audit entry
    records what was replayed until then).
    """
    if to_queue:
        services.queue_require(to_queue)
    queues = {to_queue} if to_queue else {record.queue for record in records}
    audit_queue = next(iter(queues)) if len(queues) == 1 else ""
    report = ReplayReport()
    with audited(
        action=AuditAction.REPLAY, via=via, user=replayed_by, actor=actor, queue=audit_queue
    ) as note:
        for record in records:
            outcome, item, exc = replay_outcome(
                record=record, to_queue=to_queue, replayed_by=replayed_by, actor=actor
            )
            getattr(report, outcome).append(item)
            note.message_ids = [r["message_id"] for r in report.replayed]
            note.detail = {
                "originals": [r["original"] for r in report.replayed],
                "skipped": len(report.skipped),
                "failed": len(report.failed),
            }
            if isinstance(exc, errors.SQSUnavailable | errors.DatabaseUnavailable):
                raise exc
            progress(1)
        note.succeeded = not (report.failed or report.skipped)
    return report


def replay_outcome(
    *, record: Message, to_queue: str | None = None, replay_id: str | None = None, replayed_by=None, actor=""
) -> tuple[str, dict, errors.WipsieError | None]:
    """Replay one row and say how it went: ("replayed", "skipped" or "failed", the item, the error)."""
    original = original_id_of(record)
    try:
        replay = message_replay(
            record=record, to_queue=to_queue, replay_id=replay_id, replayed_by=replayed_by, actor=actor
        )
    except errors.ValidationFailed as exc:
        return "skipped", {"original": original, "reason": exc.message}, exc
    except errors.WipsieError as exc:
        return "failed", {"original": original, "error": f"{exc.error_code}: {exc.message}"}, exc
    return "replayed", {"original": original, **replay.as_dict()}, None


def message_replay(
    *,
    record: Message,
    to_queue: str | None = None,
    message: dict | None = None,
    attributes: dict | None = None,
    replay_id: str | None = None,
    replayed_by=None,
    actor: str = "",
    via: AuditVia | None = None,
) -> Replay:
    """Send one history row's body again as a new message. Raises ValidationFailed when it cannot be.

    `message` and `attributes` replace the recorded ones (an edit from the
    admin's form, validated by the API's serializer); the recorded body must
    otherwise still validate. `replay_id` is the new message's id: the same id
    twice (a double click, a background run resumed after its worker was
    killed) is recognised by message_send's duplicate-id rule, so the replay
    is sent once. Without one, a fresh id.
    """
    queue = to_queue or record.queue
    original_id = original_id_of(record)
    actor = actor or getattr(replayed_by, "username", "")
    with audited(action=AuditAction.REPLAY, via=via, user=replayed_by, actor=actor, queue=queue) as note:
        edited = message is not None
        message = _recorded_message(record) if message is None else message
        message = {key: value for key, value in message.items() if key not in NOT_REPLAYED_KEYS}
        # The id is chosen here rather than by message_send, so that its row is
        # reserved before the send: the link below always has a row to point from.
        message |= {"id": replay_id or str(uuid.uuid4()), "replay_of": original_id}
        sent = services.message_send(
            queue=queue,
            message=message,
            attributes=(record.attributes or {}) if attributes is None else attributes,
            sent_by=replayed_by,
            source="manual",
        )
        if sent.duplicate and sent.body.get("replay_of") != original_id:
            raise errors.ValidationFailed(
                "A message with this id already exists and is not a replay of this one; nothing was sent.",
                details={"id": message["id"]},
            )
        _link(record=record, sent=sent, queue=queue, actor=actor)
        note.message_ids = [sent.message_id]
        note.detail = {"original": original_id, "id": sent.body["id"], "duplicate": sent.duplicate}
        if edited:
            note.detail["edited"] = True
    return Replay(sent.message_id, str(sent.body["id"]), queue, sent.duplicate, sent.record)


def _recorded_message(record: Message) -> dict:
    if not isinstance(record.body, dict):
        raise errors.ValidationFailed(
            "Its body is not a JSON object: replay it from its page as raw JSON, or send it with sqs_send."
        )
    serializer = StandardMessageSerializer(
        data={k: v for k, v in record.body.items() if k not in NOT_REPLAYED_KEYS}
    )
    if not serializer.is_valid():
        raise errors.ValidationFailed(
            "Its body no longer validates.", details=errors.validation_details(serializer.errors)
        )
    return serializer.validated_data


def _link(*, record: Message, sent, queue: str, actor: str) -> None:
    """The replay points to its original, and the original's timeline names the replay.

    Both writes are idempotent, so a repeated replay (a duplicate send) completes
    a link that a process killed after the send left half-written.
    """
    if sent.record is not None and sent.record.pk:
        Message.objects.filter(pk=sent.record.pk, replay_of__isnull=True).update(replay_of=record)
    replay_id = str(sent.body["id"])
    if sent.duplicate and record.events.filter(kind=EventKind.REPLAYED, detail__replay_id=replay_id).exists():
        return
    MessageEvent.objects.create(
        message=record,
        kind=EventKind.REPLAYED,
        actor=actor,
        detail={"replay_message_id": sent.message_id, "replay_id": replay_id, "to_queue": queue},
    )
