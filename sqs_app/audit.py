"""The audit log: every operator action, from the API, the admin or a management command.

The services and operations that act (send, delete, replay, redrive, purge,
the operator runs) write their own entry, inside `audited()`: a door only says
who acts and through which door (`via`, the user or actor), so no door can
forget the audit. `via=None` means no operator acted (a worker, the
scheduler, a test). A single send through the API is not recorded here: its
history row already names the sender and the source.

Writing an entry never raises: an action that happened must not be reported
as failed because its audit row could not be written (the failure is logged).
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import DatabaseError

from .errors import WipsieError
from .models import AuditAction, AuditEntry, AuditVia

logger = logging.getLogger(__name__)

# Long id lists (a purge, a big redrive) are cut: the count stays exact.
MAX_IDS = 500


def audit_record(
    *,
    action: AuditAction | str,
    via: AuditVia | str,
    actor: str = "",
    user=None,
    queue: str = "",
    message_ids: list[str] | None = None,
    count: int | None = None,
    succeeded: bool = True,
    detail: dict | None = None,
) -> AuditEntry | None:
    """Write one audit entry. `actor` defaults to the user's username."""
    ids = [str(i) for i in (message_ids or []) if i]
    actor = actor or getattr(user, "username", "") or "anonymous"
    detail = dict(detail or {})
    if len(ids) > MAX_IDS:
        detail["message_ids_truncated"] = len(ids) - MAX_IDS
    try:
        return AuditEntry.objects.create(
            action=action,
            via=via,
            actor=actor[:150],
            user=user if getattr(user, "pk", None) else None,
            queue=queue or "",
            message_ids=ids[:MAX_IDS],
            count=len(ids) if count is None else count,
            succeeded=succeeded,
            detail=detail,
        )
    except DatabaseError:
        logger.exception("Could not write the audit entry for %s on %s", action, queue or "-")
        return None


def audit_list(*, action: str | None = None, queue: str | None = None, actor: str | None = None):
    """Audit entries, newest first, narrowed by the given filters (served by the indexes)."""
    entries = AuditEntry.objects.all()
    if action:
        entries = entries.filter(action=action)
    if queue:
        entries = entries.filter(queue=queue)
    if actor:
        entries = entries.filter(actor=actor)
    return entries


@dataclass
class AuditNote:
    """What the action inside `audited()` did, filled in as it goes."""

    message_ids: list[str] = field(default_factory=list)
    count: int | None = None  # None: len(message_ids)
    succeeded: bool = True
    detail: dict = field(default_factory=dict)
    queue: str = ""
    skip: bool = False  # nothing happened worth recording (a dry run)


def is_audited(*, action: AuditAction | str, via: AuditVia | str | None) -> bool:
    """Whether an action through this door is written to the audit log (see the module's docstring)."""
    return via is not None and not (action == AuditAction.SEND and via == AuditVia.API)


@contextmanager
def audited(
    *, action: AuditAction | str, via: AuditVia | str | None, user=None, actor: str = "", queue: str = ""
) -> Iterator[AuditNote]:
    """Write one audit entry for the action done inside the block.

    What the block noted when it ends; when it raises a WipsieError, a failed
    entry with the error's code (and whatever it had noted, say the messages
    already replayed before SQS went away), and the error goes on.
    """
    note = AuditNote(queue=queue)
    if not is_audited(action=action, via=via):
        yield note
        return

    def record(*, count: int | None, succeeded: bool, detail: dict) -> None:
        # What the block noted by the time it ended (queue and ids may be set late).
        audit_record(
            action=action,
            via=via,
            user=user,
            actor=actor,
            queue=note.queue,
            message_ids=note.message_ids,
            count=count,
            succeeded=succeeded,
            detail=detail,
        )

    try:
        yield note
    except WipsieError as exc:
        count = note.count if note.count is not None else len(note.message_ids)
        record(count=count, succeeded=False, detail={**note.detail, "error": exc.error_code})
        raise
    if not note.skip:
        record(count=note.count, succeeded=note.succeeded, detail=note.detail)
