"""Send the spec's test message to the default queue (source `manual`)."""

from sqs_app import services
from sqs_app.management.base import OperatorCommand
from sqs_app.models import AuditVia


class Command(OperatorCommand):
    help = "Send the test message to the default queue, as POST /sqs/test-message does."

    def run(self, **options):
        _, sent = services.test_message_send(
            sent_by=self.operator_user(), source="manual", via=AuditVia.COMMAND, actor=self.operator
        )
        return {"message_id": sent.message_id, "id": sent.body["id"], "queue": "default", "status": "sent"}
