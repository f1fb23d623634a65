"""Move dead letters back onto their queue: bounded, paced, never the same message twice per run."""

from sqs_app import operations, services
from sqs_app.management.base import (
    OperationFailed,
    OperatorCommand,
    UsageError,
    positive_float,
    positive_int,
)
from sqs_app.models import AuditAction
from sqs_app.queues import CELERY_QUEUE, OPERATOR_QUEUES


class Command(OperatorCommand):
    help = (
        "Replay a queue's dead letters onto the queue: at most --limit, at most --rate per second; "
        "--dry-run lists them and leaves them where they are; --id picks messages."
    )
    audit_action = AuditAction.REDRIVE

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
        if ids:
            return self._selected(queue=queue, ids=ids, limit=limit)
        with self.progress(limit, "Redriving") as advance:
            report = operations.dlq_redrive_run(
                queue=queue,
                limit=limit,
                rate=rate,
                dry_run=dry_run,
                replayed_by=self.operator_user(),
                actor=self.operator,
                progress=advance,
            )
        result = {
            "queue": queue,
            "dry_run": dry_run,
            "dlq_depth_at_start": report.dlq_depth_at_start,
            "looked_at": report.looked_at,
            "replayed": report.replayed,
            "failed": report.failed,
            "stopped": report.stopped,
        }
        if not dry_run:
            self.audit(
                action=AuditAction.REDRIVE,
                queue=queue,
                message_ids=[item["message_id"] for item in report.replayed],
                succeeded=not report.failed,
                detail={
                    "failed": len(report.failed),
                    "rate": rate,
                    "limit": limit,
                    "stopped": report.stopped,
                },
            )
        self.emit(result)
        if report.failed:
            raise OperationFailed(
                f"{len(report.failed)} of {report.looked_at} dead letter(s) failed to replay."
            )
        return None

    def _selected(self, *, queue, ids, limit):
        replayed = services.dlq_redrive(
            queue=queue, max_messages=limit or 1000, only_ids=set(ids), replayed_by=self.operator_user()
        )
        self.audit(action=AuditAction.REDRIVE, queue=queue, message_ids=[r.message_id for r in replayed])
        result = {
            "queue": queue,
            "dry_run": False,
            "replayed": [
                {"dlq_message_id": r.dlq_message_id, "message_id": r.message_id, "id": None} for r in replayed
            ],
            "failed": [],
            "stopped": "",
        }
        self.emit(result)
        if len(replayed) < len(ids):
            raise OperationFailed(f"Only {len(replayed)} of {len(ids)} requested message(s) were in the DLQ.")

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
        if result["stopped"]:
            self.line(f"Stopped: {result['stopped']}.")
        verb = "Would replay" if result["dry_run"] else "Replayed"
        self.line(f"{verb} {len(result['replayed'])} message(s) onto {result['queue']}.")
