"""Move dead-lettered messages back onto their queue, to be processed again."""

from django.core.management.base import BaseCommand, CommandError

from sqs_app import services
from sqs_app.errors import WipsieError
from sqs_app.queues import LOGICAL_QUEUES


class Command(BaseCommand):
    help = "Replay messages from a queue's dead-letter queue (all of them, or only the given ids)."

    def add_arguments(self, parser):
        parser.add_argument("queue", choices=LOGICAL_QUEUES, help="The logical queue, e.g. notifications.")
        parser.add_argument(
            "--id",
            dest="ids",
            action="append",
            help="Only this message (StandardMessage id or SQS message id); repeatable.",
        )
        parser.add_argument("--max", type=int, default=100, help="Look at most at this many DLQ messages.")

    def handle(self, *args, queue, ids, max, **options):
        try:
            replayed = services.dlq_redrive(queue=queue, max_messages=max, only_ids=set(ids) if ids else None)
        except WipsieError as exc:
            raise CommandError(f"{exc.error_code}: {exc.message}") from exc
        for item in replayed:
            self.stdout.write(f"{item.dlq_message_id} -> {item.message_id}")
        self.stdout.write(self.style.SUCCESS(f"Replayed {len(replayed)} message(s) onto {queue}."))
        if ids and len(replayed) < len(ids):
            raise CommandError(f"Only {len(replayed)} of {len(ids)} requested message(s) were in the DLQ.")
