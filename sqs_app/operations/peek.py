"""Peek: a DLQ's messages, looked at without consuming them, each with its history row."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Count

from .. import services, sqs_client
from ..models import EventKind, Message, MessageEvent
from ..queues import CELERY_QUEUE
from ..services import DLQ_ERROR_ATTRIBUTE
from .common import operator_queue_require

PEEK_LIMIT = 100
PEEK_VISIBILITY_SECONDS = 30


@dataclass
class DeadLetter:
    """A message on a DLQ, as a peek saw it, with its history row when there is one."""

    dlq_message_id: str
    raw_body: str
    body: object
    key: str | None  # its StandardMessage id
    task_type: str
    last_error: str
    dead_lettered_at: datetime | None  # when it reached the DLQ (SentTimestamp of the DLQ copy)
    record: Message | None = None
    replays: int = 0  # replays already made from its history row

    @property
    def receive_count(self) -> int | None:
        """How often its own queue delivered it (the history's count): the DLQ's own count
        only says how often it was peeked at."""
        return self.record.receive_count if self.record is not None else None


@dataclass
class Peek:
    queue: str
    depth: int  # visible messages on the DLQ when the peek began (approximate, as SQS says)
    messages: list[DeadLetter]

    @property
    def complete(self) -> bool:
        return len(self.messages) >= self.depth


def dlq_peek(*, queue: str, limit: int | None = None) -> Peek:
    """Up to `limit` (PEEK_LIMIT) messages of a queue's DLQ, looked at without consuming them.

    SQS has no way to read a message without receiving it. A receive with a
    visibility timeout of 0 leaves the messages visible, so the next receive
    may return the same few again: no way to see more than ten. So pages of
    ten are received with a short visibility timeout (each page distinct, as
    the ones already seen are hidden), and as soon as the last page is read
    every message is made visible again at once, with ChangeMessageVisibility-
    Batch (0). Should this process die in between, they come back by themselves
    after PEEK_VISIBILITY_SECONDS. A peek raises the DLQ copies' receive count,
    which changes nothing: a DLQ has no redrive policy of its own.

    Short polls (no wait): on real SQS a short poll samples some of the queue's
    servers, so a small DLQ may show fewer messages than its depth; the page
    says how many it shows of how many.
    """
    operator_queue_require(queue)
    dlq = sqs_client.dlq_url(queue)
    depth = sqs_client.queue_depths(queue, dead_letters=True)["visible"]
    wanted = min(depth, limit or PEEK_LIMIT)
    received: list[sqs_client.ReceivedMessage] = []
    try:
        while len(received) < wanted:
            batch = sqs_client.receive_messages(
                queue=queue,
                max_messages=min(10, wanted - len(received)),
                visibility_timeout=PEEK_VISIBILITY_SECONDS,
                url=dlq,
            )
            if not batch:
                break
            received += batch
    finally:
        sqs_client.release_messages_all(
            queue=queue, receipt_handles=[m.receipt_handle for m in received], url=dlq
        )
    letters = [dead_letter(m) for m in received]
    if queue != CELERY_QUEUE:  # Celery's own tasks have no history
        attach_history(queue, letters)
    return Peek(queue=queue, depth=depth, messages=letters)


def dead_letter(received) -> DeadLetter:
    body = services.parse_body(received.body)
    fields = body if isinstance(body, dict) else {}
    error = fields.get("last_error") or received.attributes.get(DLQ_ERROR_ATTRIBUTE, {}).get(
        "StringValue", ""
    )
    millis = received.system_attributes.get("SentTimestamp")
    return DeadLetter(
        dlq_message_id=received.message_id,
        raw_body=received.body,
        body=body,
        key=services.standard_id_of(body),
        task_type=fields.get("task_type") if isinstance(fields.get("task_type"), str) else "",
        last_error=error if isinstance(error, str) else str(error),
        dead_lettered_at=datetime.fromtimestamp(int(millis) / 1000, tz=UTC) if millis else None,
    )


def attach_history(queue: str, letters: list[DeadLetter]) -> None:
    """Each letter's history row: by its StandardMessage id, or (another producer's body) by the
    DLQ id its failure recorded, looked for among the failures of the minutes it reached the DLQ."""
    keyed = {letter.key: letter for letter in letters if letter.key}
    rows = Message.objects.filter(queue=queue, standard_id__in=list(keyed)).annotate(
        replay_count=Count("replays")
    )
    for row in rows:
        letter = keyed[str(row.standard_id)]
        letter.record, letter.replays = row, row.replay_count
    foreign = {
        letter.dlq_message_id: letter for letter in letters if not letter.key and letter.dead_lettered_at
    }
    if not foreign:
        return
    moments = [letter.dead_lettered_at for letter in foreign.values()]
    events = MessageEvent.objects.filter(
        kind__in=[EventKind.FAILED, EventKind.DEAD_LETTERED],
        at__gte=min(moments) - timedelta(minutes=1),
        at__lte=max(moments) + timedelta(minutes=1),
        detail__dlq_message_id__in=list(foreign),
    ).select_related("message")
    for event in events:
        letter = foreign[event.detail["dlq_message_id"]]
        letter.record = event.message
        letter.last_error = letter.last_error or event.message.last_error
