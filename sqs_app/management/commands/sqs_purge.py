"""Purge a queue or its DLQ: every message in it is dropped by SQS. Asks first unless --yes."""

import sys

from sqs_app import operations, sqs_client
from sqs_app.management.base import OperationFailed, OperatorCommand
from sqs_app.models import AuditVia
from sqs_app.queues import OPERATOR_QUEUES


class Command(OperatorCommand):
    help = "Purge a queue (or with --dlq its dead-letter queue). Asks for the queue's name unless --yes."
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("queue", help=f"One of: {', '.join(OPERATOR_QUEUES)}.")
        parser.add_argument("--dlq", action="store_true", help="Purge the queue's dead-letter queue instead.")
        parser.add_argument("--yes", action="store_true", help="Do not ask.")

    def run(self, *, queue, dlq, yes, **options):
        operations.operator_queue_require(queue)
        what = f"{queue} dead-letter queue" if dlq else queue
        if not yes:
            depths = sqs_client.queue_depths(queue, dead_letters=dlq)
            self.stderr.write(
                f"Purge {what} ({depths['visible']} visible, {depths['in_flight']} in flight)? "
                f"Type the queue name to confirm: ",
                ending="",
            )
            answer = (options.get("stdin") or sys.stdin).readline().strip()
            if answer != queue:
                raise OperationFailed(f"Not purged: the answer was not {queue!r}.")
        count = operations.queue_purge(
            queue=queue,
            dead_letters=dlq,
            via=AuditVia.COMMAND,
            user=self.operator_user(),
            actor=self.operator,
        )
        return {"queue": queue, "dead_letters": dlq, "purged_about": count}

    def render(self, result):
        what = f"{result['queue']} dead-letter queue" if result["dead_letters"] else result["queue"]
        self.line(f"Purged {what}: about {result['purged_about']} message(s) (SQS finishes within 60 s).")
