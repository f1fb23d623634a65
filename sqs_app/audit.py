"""The audit log: every operator action, from the API, the admin or a management command.

`audit_record` is called by the door (view, admin action, command) once the
service has acted, with what the service reported. It never raises: an action
that happened must not be reported as failed because its audit row could not
be written (the failure is logged instead).
"""

import logging

from django.db import DatabaseError

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
