"""Reads of the message history."""

import contextlib
import json
import uuid
from datetime import datetime, timedelta

from django.db.models import Count, Min, Q, QuerySet
from django.db.models.functions import TruncHour
from django.utils import timezone
from django_celery_results.models import TaskResult

from . import errors, permissions, sqs_client
from .models import Message, MessageStatus
from .permissions import Action
from .queues import LOGICAL_QUEUES, OPERATOR_QUEUES

# Messages still on their way: sent and not yet given an outcome. Their rows
# are the backlog, read through the (queue, status, created_at) index.
OPEN_STATUSES = (
    MessageStatus.SENT,
    MessageStatus.RECEIVED,
    MessageStatus.PROCESSING,
    MessageStatus.RETRYING,
)


def messages_visible_to(user) -> Q:
    """The messages `user` may see: those they sent, and with VIEW_ALL those on their queues."""
    own = Q(sent_by=user) if user is not None and user.is_authenticated else Q(pk__in=[])
    if not permissions.allowed(user, Action.VIEW_ALL):
        return own
    queues = permissions.granted_queues(user)
    return Q() if queues is None else own | Q(queue__in=queues)


def message_list(
    *,
    queue: str | None = None,
    status: str | None = None,
    task_type: str | None = None,
    correlation_id: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    visible_to=None,
) -> QuerySet[Message]:
    """Messages, newest first, narrowed by whichever filters are given.

    With `visible_to` (a user), only the messages that user may see.
    """
    messages = Message.objects.select_related("sent_by")
    if visible_to is not None:
        messages = messages.filter(messages_visible_to(visible_to))
    if queue:
        messages = messages.filter(queue=queue)
    if status:
        messages = messages.filter(status=status)
    if task_type:
        messages = messages.filter(task_type=task_type)
    if correlation_id:
        messages = messages.filter(correlation_id=correlation_id)
    if created_after:
        messages = messages.filter(created_at__gte=created_after)
    if created_before:
        messages = messages.filter(created_at__lt=created_before)
    return messages


def message_get(*, message_id: str, visible_to=None) -> Message:
    """One message by SQS's MessageId or by its StandardMessage `id`, with its events.

    With `visible_to` (a user), a message that user may not see is not found:
    404 rather than 403, so that nobody learns which ids exist.
    """
    match = Q(sqs_message_id=message_id)
    with contextlib.suppress(ValueError):  # not a UUID: it can only be SQS's id
        match |= Q(standard_id=uuid.UUID(message_id))
    message = (
        Message.objects.select_related("sent_by")
        .prefetch_related("events")
        .filter(match)
        .filter(messages_visible_to(visible_to) if visible_to is not None else Q())
        .order_by("created_at")
        .first()
    )
    if message is None:
        raise errors.MessageNotFound(details={"message_id": message_id})
    return message


# The outcomes counted by when they happened (Message.finished_at, indexed).
FINISHED_OUTCOMES = (MessageStatus.SUCCEEDED, MessageStatus.FAILED, MessageStatus.DEAD_LETTERED)


def message_activity(*, since: datetime) -> dict[str, dict[str, int]]:
    """Per queue: messages created since `since`, and the outcomes recorded since then.

    {"notifications": {"sent": 3, "succeeded": 2, "failed": 0, "dead_lettered": 1}}.
    Two grouped counts, each served by an index (created_at; status and
    finished_at): nothing scans the whole history.
    """
    activity: dict[str, dict[str, int]] = {}
    for row in Message.objects.filter(created_at__gte=since).values("queue").annotate(n=Count("id")):
        activity.setdefault(row["queue"], {})["sent"] = row["n"]
    finished = Message.objects.filter(status__in=FINISHED_OUTCOMES, finished_at__gte=since)
    for row in finished.values("queue", "status").annotate(n=Count("id")):
        activity.setdefault(row["queue"], {})[row["status"]] = row["n"]
    return activity


def message_status_counts(*, status: str) -> dict[str, int]:
    """Per queue, how many messages are in `status` now (the status index)."""
    rows = Message.objects.filter(status=status).values("queue").annotate(n=Count("id"))
    return {row["queue"]: row["n"] for row in rows}


def message_throughput(*, until: datetime, hours: int = 24) -> list[dict]:
    """Per hour over the last `hours`: messages created, succeeded, and failed (or dead-lettered).

    [{"hour": datetime, "sent": n, "succeeded": n, "failed": n}, ...], oldest first, every hour present.
    """
    end = until.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=hours)
    buckets = {start + timedelta(hours=i): {"sent": 0, "succeeded": 0, "failed": 0} for i in range(hours)}

    def count(queryset, field: str, figure: str) -> None:
        per_hour = queryset.annotate(hour=TruncHour(field)).values("hour").annotate(n=Count("id"))
        for row in per_hour:
            if row["hour"] in buckets:
                buckets[row["hour"]][figure] += row["n"]

    count(Message.objects.filter(created_at__gte=start), "created_at", "sent")
    finished = Message.objects.filter(finished_at__gte=start)
    count(finished.filter(status=MessageStatus.SUCCEEDED), "finished_at", "succeeded")
    count(
        finished.filter(status__in=[MessageStatus.FAILED, MessageStatus.DEAD_LETTERED]),
        "finished_at",
        "failed",
    )
    return [{"hour": hour, **figures} for hour, figures in buckets.items()]


def message_task_result(*, message: Message):
    """The django-celery-results row of the task that processed the message, if any.

    django-celery-results has no foreign-key hook: the message keeps the
    Celery task id, and this joins on it.
    """
    if not message.celery_task_id:
        return None
    task_result = TaskResult.objects.filter(task_id=message.celery_task_id).first()
    if task_result is not None:
        task_result.result = _decoded(task_result.result)
    return task_result


def _decoded(value):
    try:
        return json.loads(value) if value is not None else None
    except ValueError:
        return value


def queue_overview(*, now: datetime | None = None) -> list[dict]:
    """Each queue's depth in SQS, its dead letters and the age of its oldest message.

    One row per queue, the four and Wipsie's own Celery task queue (`celery`):
    {"name", "visible", "in_flight", "delayed", "dead", "retrying",
    "oldest_age_seconds", "consumers"}, where "retrying" counts the history's
    messages waiting out a retry backoff (they are in flight in SQS), and
    "consumers" is the queue's entry in the workers' consumer list
    (tasks_app.consumers.queue_consumers: status, last poll age, processes),
    or None when no worker consumes it.
    Raises a WipsieError when SQS cannot answer. The admin, `sqs_queues` and
    /metrics all read this.

    SQS has no "age of the oldest message" attribute (that is a CloudWatch
    metric), and peeking would count as a receive toward the redrive policy.
    So the age comes from the history: the oldest row of the queue that is
    still open (sent, received, processing or retrying), found through an
    index. Celery's own queue has no history: its age is None. The age is
    counted to `now` (default: this moment), so that a caller linking to "the
    messages at least this old" uses the same moment however long SQS took.
    """
    from tasks_app.consumers import queue_consumers

    oldest = open_messages_by_queue()
    consumers = queue_consumers()
    rows = []
    for name in OPERATOR_QUEUES:
        depths = sqs_client.queue_depths(name)
        dead = sqs_client.queue_depths(name, dead_letters=True)["visible"]
        backlog = oldest.get(name, {})
        first = backlog.get("oldest")
        age = max(0, round(((now or timezone.now()) - first).total_seconds())) if first else None
        rows.append(
            {
                "name": name,
                **depths,
                "dead": dead,
                # Celery's own queue has no history rows: nothing to count (None, like its age).
                "retrying": backlog.get("by_status", {}).get(MessageStatus.RETRYING, 0)
                if name in LOGICAL_QUEUES
                else None,
                "oldest_age_seconds": age,
                "consumers": consumers.get(name),
            }
        )
    return rows


def open_messages_by_queue() -> dict[str, dict]:
    """{queue: {"oldest": datetime, "by_status": {status: count}}} for the open messages.

    One GROUP BY over the open rows only (the backlog), not the whole history.
    """
    rows = (
        Message.objects.filter(status__in=OPEN_STATUSES, queue__in=LOGICAL_QUEUES)
        .values("queue", "status")
        .annotate(oldest=Min("created_at"), n=Count("id"))
        .order_by()
    )
    result: dict[str, dict] = {}
    for row in rows:
        entry = result.setdefault(row["queue"], {"oldest": row["oldest"], "by_status": {}})
        entry["oldest"] = min(entry["oldest"], row["oldest"])
        entry["by_status"][row["status"]] = row["n"]
    return result
