"""Purge a queue, or its DLQ."""

from .. import sqs_client
from ..audit import audited
from ..models import AuditAction, AuditVia
from .common import operator_queue_require


def queue_purge(
    *, queue: str, dead_letters: bool = False, via: AuditVia | None = None, user=None, actor: str = ""
) -> int:
    """Purge a queue (or its DLQ). Returns how many messages it held just before.

    History rows are left as they are: a purge removes messages from SQS, and
    the record of what they were is still worth keeping.
    """
    operator_queue_require(queue)
    with audited(action=AuditAction.PURGE, via=via, user=user, actor=actor, queue=queue) as note:
        depths = sqs_client.queue_depths(queue, dead_letters=dead_letters)
        sqs_client.purge_queue(queue=queue, dead_letters=dead_letters)
        note.count = depths["visible"] + depths["in_flight"] + depths["delayed"]
        note.detail = {"dead_letters": dead_letters}
    return note.count
