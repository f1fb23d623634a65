"""Operator actions on whole queues and on the history: purge, replay, redrive, prune.

The management commands call these (and the admin may); each returns a report
of exactly what happened, so that a door can print it, audit it and choose its
exit code. Sending goes through sqs_app.services like every other send.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import errors, selectors, services, sqs_client
from .models import EventKind, Message, MessageEvent
from .queues import CELERY_QUEUE, OPERATOR_QUEUES
from .schemas import StandardMessageSerializer

Progress = Callable[[int], None]  # called with how many more items are done


def _no_progress(_: int) -> None:
    pass


def operator_queue_require(name: str) -> str:
    """One of the four queues or Wipsie's own task queue, else QUEUE_NOT_FOUND."""
    if name not in OPERATOR_QUEUES:
        raise errors.QueueNotFound(details={"queue_name": name, "available_queues": list(OPERATOR_QUEUES)})
    return name


# --- Purge ------------------------------------------------------------------------------


def queue_purge(*, queue: str, dead_letters: bool = False) -> int:
    """Purge a queue (or its DLQ). Returns how many messages it held just before.

    History rows are left as they are: a purge removes messages from SQS, and
    the record of what they were is still worth keeping.
    """
    operator_queue_require(queue)
    depths = sqs_client.queue_depths(queue, dead_letters=dead_letters)
    sqs_client.purge_queue(queue=queue, dead_letters=dead_letters)
    return depths["visible"] + depths["in_flight"] + depths["delayed"]


# --- Replay from the history ---------------------------------------------------------------

# Keys Wipsie sets on every send, or that describe a past attempt: a replay gets new ones.
_NOT_REPLAYED_KEYS = {"id", "timestamp", "source", "queue", "retry_count", "last_error", "replay_of"}


@dataclass
class ReplayReport:
    replayed: list[dict] = field(default_factory=list)  # {"original", "message_id", "id", "queue"}
    skipped: list[dict] = field(default_factory=list)  # {"original", "reason"}
    failed: list[dict] = field(default_factory=list)  # {"original", "error"}


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
        return [_message_by_any_id(message_id) for message_id in ids]
    messages = selectors.message_list(queue=queue, status=status, created_after=since)
    return list(messages[:limit])


def _message_by_any_id(message_id: str) -> Message:
    return selectors.message_get(message_id=message_id)


def messages_replay(
    *,
    records: list[Message],
    to_queue: str | None = None,
    replayed_by=None,
    actor: str = "",
    progress: Progress = _no_progress,
) -> ReplayReport:
    """Send each message's original body again, as a new message (new id, source `manual`).

    The new body carries `replay_of` (the original's id) and keeps its
    correlation id, so one search finds both; the original row keeps its ids
    and gets a `replayed` event naming the new message. A body that is not a
    JSON object, or no longer validates, is skipped with the reason.
    """
    if to_queue:
        services.queue_require(to_queue)
    report = ReplayReport()
    for record in records:
        original = str(record.standard_id or record.sqs_message_id or record.pk)
        try:
            item = message_replay(record=record, to_queue=to_queue, replayed_by=replayed_by, actor=actor)
        except errors.ValidationFailed as exc:
            report.skipped.append({"original": original, "reason": exc.message})
        except errors.WipsieError as exc:
            report.failed.append({"original": original, "error": f"{exc.error_code}: {exc.message}"})
            if isinstance(exc, errors.SQSUnavailable | errors.DatabaseUnavailable):
                raise
        else:
            report.replayed.append({"original": original, **item})
        progress(1)
    return report


def message_replay(
    *, record: Message, to_queue: str | None = None, replayed_by=None, actor: str = ""
) -> dict:
    """Replay one history row; see messages_replay. Raises ValidationFailed when it cannot be."""
    if not isinstance(record.body, dict):
        raise errors.ValidationFailed("Its body is not a JSON object; send it again with sqs_send.")
    queue = to_queue or record.queue
    serializer = StandardMessageSerializer(
        data={k: v for k, v in record.body.items() if k not in _NOT_REPLAYED_KEYS}
    )
    if not serializer.is_valid():
        raise errors.ValidationFailed(
            "Its body no longer validates.", details=errors.validation_details(serializer.errors)
        )
    original_id = str(record.standard_id or record.sqs_message_id)
    message = {**serializer.validated_data, "replay_of": original_id}
    sent = services.message_send(
        queue=queue, message=message, attributes=record.attributes or {}, sent_by=replayed_by, source="manual"
    )
    MessageEvent.objects.create(
        message=record,
        kind=EventKind.REPLAYED,
        actor=actor or getattr(replayed_by, "username", ""),
        detail={"replay_message_id": sent.message_id, "replay_id": sent.body["id"], "to_queue": queue},
    )
    return {"message_id": sent.message_id, "id": sent.body["id"], "queue": queue}


# --- Redrive: dead letters back to their queue -----------------------------------------------


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


class _Pacer:
    """Keeps a loop at `rate` iterations per second at most (None: as fast as it goes)."""

    def __init__(self, rate: float | None):
        self.interval = 1.0 / rate if rate else 0.0
        self.next_at = time.monotonic()

    def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        if now < self.next_at:
            time.sleep(self.next_at - now)
        self.next_at = max(now, self.next_at) + self.interval


def dlq_redrive_run(
    *,
    queue: str,
    limit: int | None = None,
    rate: float | None = None,
    dry_run: bool = False,
    replayed_by=None,
    actor: str = "",
    progress: Progress = _no_progress,
) -> RedriveReport:
    """Move dead letters back onto their queue, at most `limit`, at most `rate` per second.

    The run is bounded by the DLQ's depth when it starts, and a message it has
    already replayed is never replayed twice: a poison message that fails
    again while the run is going lands back in the DLQ under a new SQS id but
    with its StandardMessage id, and the run stops when it meets it (or the
    same SQS id) again, leaving it in the DLQ. A dry run receives and lists
    the messages, then hands them all back untouched.
    """
    operator_queue_require(queue)
    dlq = sqs_client.dlq_url(queue)
    depth = sqs_client.queue_depths(queue, dead_letters=True)["visible"]
    bound = depth if limit is None else min(limit, depth)
    report = RedriveReport(queue=queue, dlq_depth_at_start=depth, dry_run=dry_run)
    # Hidden long enough for the slowest batch of ten at the given rate.
    visibility = min(43200, max(60, math.ceil(20 / rate) if rate else 60))
    pacer = _Pacer(rate)
    seen_dlq_ids: set[str] = set()
    replayed_keys: set[str] = set()
    handed_back: list[str] = []
    actor = actor or getattr(replayed_by, "username", "")
    try:
        while report.looked_at < bound and not report.stopped:
            batch = sqs_client.receive_messages(
                queue=queue,
                max_messages=min(10, bound - report.looked_at),
                visibility_timeout=visibility,
                url=dlq,
            )
            if not batch:
                break
            for received in batch:
                body = services.parse_body(received.body)
                key = services.standard_id_of(body)
                if report.stopped or report.looked_at >= bound:
                    handed_back.append(received.receipt_handle)
                    continue
                if received.message_id in seen_dlq_ids or (key and key in replayed_keys):
                    report.stopped = "a message replayed in this run failed again and is back in the DLQ"
                    handed_back.append(received.receipt_handle)
                    continue
                seen_dlq_ids.add(received.message_id)
                report.looked_at += 1
                if dry_run:
                    handed_back.append(received.receipt_handle)
                    report.replayed.append(
                        {"dlq_message_id": received.message_id, "message_id": None, "id": key}
                    )
                    progress(1)
                    continue
                pacer.wait()
                try:
                    new_id = _redrive_one(queue=queue, dlq=dlq, received=received, body=body, actor=actor)
                except errors.WipsieError as exc:
                    handed_back.append(received.receipt_handle)
                    report.failed.append(
                        {"dlq_message_id": received.message_id, "error": f"{exc.error_code}: {exc.message}"}
                    )
                    if isinstance(exc, errors.SQSUnavailable):
                        report.stopped = "SQS became unreachable"
                else:
                    if key:
                        replayed_keys.add(key)
                    report.replayed.append(
                        {"dlq_message_id": received.message_id, "message_id": new_id, "id": key}
                    )
                progress(1)
    finally:
        sqs_client.release_messages_all(queue=queue, receipt_handles=handed_back, url=dlq)
    return report


def _redrive_one(*, queue: str, dlq: str, received, body: object, actor: str) -> str:
    if queue == CELERY_QUEUE:
        # Celery's own task messages: no history to reset, the body is kombu's envelope.
        new_id = sqs_client.send_message(queue=queue, body=received.body, attributes=received.attributes)
        sqs_client.delete_message(queue=queue, receipt_handle=received.receipt_handle, url=dlq)
        return new_id
    return services.dlq_replay_one(queue=queue, dlq=dlq, received=received, body=body, actor=actor).message_id


# --- Retention --------------------------------------------------------------------------


@dataclass
class PruneReport:
    cutoff: datetime
    messages: int = 0
    poll_results: int = 0


def history_prune(
    *,
    older_than_days: int | None = None,
    batch_size: int = 1000,
    dry_run: bool = False,
    progress: Progress = _no_progress,
) -> PruneReport:
    """Delete history rows (with their events) and poll results older than the retention.

    In batches of `batch_size` rows, each in its own transaction, so that a
    large prune never holds long locks. Older than SQS's own retention (at most
    14 days) no message of these rows can still be on a queue.
    """
    from tasks_app.models import PollResult

    days = settings.HISTORY_RETENTION_DAYS if older_than_days is None else older_than_days
    if days < 1:
        raise errors.InvalidParameter("The retention must be at least one day.", details={"days": days})
    report = PruneReport(cutoff=timezone.now() - timedelta(days=days))
    old_messages = Message.objects.filter(created_at__lt=report.cutoff)
    old_results = PollResult.objects.filter(polled_at__lt=report.cutoff)
    if dry_run:
        report.messages, report.poll_results = old_messages.count(), old_results.count()
        return report
    for queryset, counter in ((old_results, "poll_results"), (old_messages, "messages")):
        while True:
            pks = list(queryset.order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not pks:
                break
            with transaction.atomic():
                queryset.model.objects.filter(pk__in=pks).delete()
            setattr(report, counter, getattr(report, counter) + len(pks))
            progress(len(pks))
    return report
