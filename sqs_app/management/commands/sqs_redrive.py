"""Move dead letters back onto their queue: bounded, paced, never the same message twice per run."""

from sqs_app import operations
from sqs_app.management.base import (
    OperationFailed,
    OperatorCommand,
    UsageError,
    positive_float,
    positive_int,
)
from sqs_app.models import AuditVia
from sqs_app.queues import CELERY_QUEUE, OPERATOR_QUEUES


class Command(OperatorCommand):
    help = (
        "Replay a queue's dead letters onto the queue: at most --limit, at most --rate per second; "
        "--dry-run lists them and leaves them where they are; --id picks messages."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("queue", help=f"One of: {', '.join(OPERATOR_QUEUES)}.")
        parser.add_argument(
            "--limit", "--max", dest="limit", type=positive_int, default=None, help="At most this many."
        )
        parser.add_argument("--rate", type=positive_float, default=None, help="At most this many per second.")
        parser.add_argument("--dry-run", action="store_true", help="Only list what would be replayed.")
        parser.add_argument(
            "--id",
            dest="ids",
            action="append",
            help="Only this message (StandardMessage id or SQS message id); repeatable.",
        )

    def run(self, *, queue, limit, rate, dry_run, ids, **options):
        operations.operator_queue_require(queue)
        if ids and queue == CELERY_QUEUE:
            raise UsageError("--id picks recorded messages; Celery's own queue has none: redrive it whole.")
        with self.progress(len(ids) if ids else limit, "Redriving") as advance:
            report = operations.dlq_redrive_run(
                queue=queue,
                limit=limit,
                only_ids=set(ids) if ids else None,
                rate=rate,
                dry_run=dry_run,
                replayed_by=self.operator_user(),
                actor=self.operator,
                via=AuditVia.COMMAND,
                progress=advance,
            )
        self.emit(
            {
                "queue": queue,
                "dry_run": dry_run,
                "dlq_depth_at_start": report.dlq_depth_at_start,
                "looked_at": report.looked_at,
                "replayed": report.replayed,
                "failed": report.failed,
                "not_found": report.not_found,
                "stopped": report.stopped,
            }
        )
        if report.failed:
            raise OperationFailed(
                f"{len(report.failed)} of {report.looked_at} dead letter(s) failed to replay."
            )
        if report.not_found:
            found = len(ids) - len(report.not_found)
            raise OperationFailed(f"Only {found} of {len(ids)} requested message(s) were in the DLQ.")
        return None

    def emit(self, result):
        if result is not None:
            super().emit(result)

    def render(self, result):
        self.table(
            ["dead letter", "new message id", "id"],
            [[r["dlq_message_id"], r["message_id"], r["id"]] for r in result["replayed"]],
        )
        for item in result["failed"]:
            self.line(f"failed {item['dlq_message_id']}: {item['error']}")
        for missing in result["not_found"]:
            self.line(f"not in the DLQ: {missing}")
        if result["stopped"]:
            self.line(f"Stopped: {result['stopped']}.")
        verb = "Would replay" if result["dry_run"] else "Replayed"
        self.line(f"{verb} {len(result['replayed'])} message(s) onto {result['queue']}.")
