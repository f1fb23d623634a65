"""How a run ends (done, stopped or cancelled), and the one audit entry that says so, with its counts."""

from django.utils import timezone

from ...audit import audit_record
from ...models import AuditAction, AuditVia, ItemOutcome, OperatorRun, RunKind, RunStatus

KIND_AUDIT = {
    RunKind.REPLAY: AuditAction.REPLAY,
    RunKind.REDRIVE: AuditAction.REDRIVE,
    RunKind.DELETE_DEAD_LETTERS: AuditAction.DELETE,
}


def run_end(run: OperatorRun, *, status: str, reason: str = "") -> None:
    """End a run a worker was acting on, and audit it; a run ended already (cancelled meanwhile) is left."""
    ended = OperatorRun.objects.filter(pk=run.pk, status__in=RunStatus.active()).update(
        status=status, stopped_reason=reason, finished_at=timezone.now(), lease_expires_at=None
    )
    if ended:
        run_audit(OperatorRun.objects.get(pk=run.pk))


def run_audit(run: OperatorRun) -> None:
    """The run's audit entry: what it did (new message ids, or the DLQ ids deleted) and its counts."""
    done = run.items.filter(outcome=ItemOutcome.DONE)
    ids = (
        list(done.values_list("dlq_message_id", flat=True))
        if run.kind == RunKind.DELETE_DEAD_LETTERS
        else list(done.values_list("new_message_id", flat=True))
    )
    audit_record(
        action=KIND_AUDIT[run.kind],
        via=run.via or AuditVia.ADMIN,
        user=run.created_by,
        actor=run.actor,
        queue=run.queue,
        message_ids=ids,
        count=run.done,
        succeeded=run.status == RunStatus.DONE and not run.failed,
        detail={
            "run": run.pk,
            "status": run.status,
            "total": run.total,
            "skipped": run.skipped,
            "failed": run.failed,
            "rate": run.parameters.get("rate"),
            **({"reason": run.stopped_reason} if run.stopped_reason else {}),
            **({"dead_letters": True} if run.kind == RunKind.DELETE_DEAD_LETTERS else {}),
        },
    )
