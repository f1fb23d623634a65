"""Receive messages like an API client would (recorded in the history), optionally deleting them."""

import json

from sqs_app import services
from sqs_app.management.base import OperatorCommand, ranged_int
from sqs_app.models import AuditAction, AuditVia
from sqs_app.queues import LOGICAL_QUEUES


class Command(OperatorCommand):
    help = "Receive up to --max messages from a queue; --delete deletes them once received."
    audit_action = AuditAction.RECEIVE

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("queue", help=f"The logical queue: {', '.join(LOGICAL_QUEUES)}.")
        parser.add_argument("--max", type=ranged_int(1, 10), default=1, help="At most this many (1-10).")
        parser.add_argument("--wait", type=ranged_int(0, 20), default=0, help="Long-poll seconds (0-20).")
        parser.add_argument(
            "--visibility", type=ranged_int(0, 43200), default=None, help="Visibility timeout in seconds."
        )
        parser.add_argument("--delete", action="store_true", help="Delete each message once received.")

    def run(self, *, queue, max, wait, visibility, delete, **options):
        user = self.operator_user()
        delivered = services.messages_receive(
            queue=queue,
            max_messages=max,
            wait_time_seconds=wait,
            visibility_timeout=visibility,
            received_by=user,
        )
        ids = [m.message_id for m in delivered]
        self.audit(action=AuditAction.RECEIVE, queue=queue, message_ids=ids)
        if delete and delivered:
            for message in delivered:
                services.message_delete(
                    queue=queue,
                    receipt_handle=message.receipt_handle,
                    deleted_by=user,
                    via=AuditVia.COMMAND,
                    actor=self.operator,
                )
        return [
            {
                "message_id": m.message_id,
                "body": m.body,
                "attributes": m.attributes,
                "receipt_handle": m.receipt_handle,
                "deleted": delete,
            }
            for m in delivered
        ]

    def render(self, result):
        self.table(
            ["message id", "body", "receipt handle", "deleted"],
            [
                [
                    m["message_id"],
                    _short(json.dumps(m["body"])),
                    _short(m["receipt_handle"], 24),
                    m["deleted"],
                ]
                for m in result
            ],
        )
        self.line(f"{len(result)} message(s) received.")


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
