"""Create Wipsie's four queues, Celery's task queue, and their DLQs. Safe to run again."""

from sqs_app import sqs_client
from sqs_app.management.base import OperatorCommand
from sqs_app.models import AuditAction


class Command(OperatorCommand):
    help = "Create (idempotently) the four Wipsie queues, Celery's task queue, and their DLQs."
    audit_action = AuditAction.SETUP

    def run(self, **options):
        provisioned = sqs_client.ensure_all_queues()
        self.audit(
            action=AuditAction.SETUP, count=0, detail={"queues": [q.logical_name for q in provisioned]}
        )
        return [{"queue": q.logical_name, "url": q.url, "dlq_url": q.dlq_url} for q in provisioned]

    def render(self, result):
        self.table(["queue", "url", "dead-letter queue"], [list(row.values()) for row in result])
        self.line(f"{len(result)} queues ready.")
