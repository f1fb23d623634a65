"""Retention: delete message history and poll results older than HISTORY_RETENTION_DAYS, in batches."""

from django.conf import settings

from sqs_app import operations
from sqs_app.management.base import OperatorCommand, positive_int, ranged_int
from sqs_app.models import AuditAction


class Command(OperatorCommand):
    help = "Delete message history (with events) and poll results older than the retention, in batches."
    audit_action = AuditAction.PRUNE

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--days",
            type=positive_int,
            default=None,
            help="Older than this (default HISTORY_RETENTION_DAYS).",
        )
        parser.add_argument("--batch-size", type=ranged_int(1, 100000), default=1000)
        parser.add_argument("--dry-run", action="store_true", help="Only count what would be deleted.")

    def run(self, *, days, batch_size, dry_run, **options):
        days = days or settings.HISTORY_RETENTION_DAYS
        with self.progress(None, "Pruning") as advance:
            report = operations.history_prune(
                older_than_days=days, batch_size=batch_size, dry_run=dry_run, progress=advance
            )
        result = {
            "days": days,
            "cutoff": report.cutoff.isoformat(),
            "dry_run": dry_run,
            "messages": report.messages,
            "poll_results": report.poll_results,
            "operator_runs": report.operator_runs,
        }
        if not dry_run:
            self.audit(action=AuditAction.PRUNE, count=report.messages, detail=result)
        return result

    def render(self, result):
        verb = "Would delete" if result["dry_run"] else "Deleted"
        self.line(
            f"{verb} {result['messages']} message(s), {result['poll_results']} poll result(s) and "
            f"{result['operator_runs']} operator run(s) "
            f"older than {result['days']} day(s) (before {result['cutoff']})."
        )
