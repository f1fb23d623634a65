"""Send the spec's test message to the default queue (source `manual`)."""

from sqs_app import services
from sqs_app.management.base import OperatorCommand
from sqs_app.models import AuditAction


class Command(OperatorCommand):
    help = "Send the test message to the default queue, as POST /sqs/test-message does."
    audit_action = AuditAction.SEND

    def run(self, **options):
        message = services.test_message_build()
        sent = services.message_send(
            queue="default", message=message, sent_by=self.operator_user(), source="manual"
        )
        self.audit(
            action=AuditAction.SEND, queue="default", message_ids=[sent.message_id], detail={"test": True}
        )
        return {"message_id": sent.message_id, "id": sent.body["id"], "queue": "default", "status": "sent"}
