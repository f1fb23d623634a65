"""Delete received messages by their receipt handles (recorded in the history)."""

from sqs_app import services
from sqs_app.management.base import OperatorCommand
from sqs_app.models import AuditVia
from sqs_app.queues import LOGICAL_QUEUES


class Command(OperatorCommand):
    help = "Delete messages from a queue by the receipt handles sqs_receive printed."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("queue", help=f"The logical queue: {', '.join(LOGICAL_QUEUES)}.")
        parser.add_argument("receipt_handles", nargs="+", metavar="RECEIPT_HANDLE")

    def run(self, *, queue, receipt_handles, **options):
        user = self.operator_user()
        deleted = []
        for handle in receipt_handles:
            record = services.message_delete(
                queue=queue, receipt_handle=handle, deleted_by=user, via=AuditVia.COMMAND, actor=self.operator
            )
            deleted.append(
                {"receipt_handle": handle, "message_id": record.sqs_message_id if record else None}
            )
        return deleted

    def render(self, result):
        self.table(
            ["message id", "receipt handle"], [[d["message_id"], d["receipt_handle"][:40]] for d in result]
        )
        self.line(f"Deleted {len(result)} message(s).")
