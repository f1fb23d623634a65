"""Print each queue's depth, and its DLQ's, for an operator at a terminal."""

from django.core.management.base import BaseCommand, CommandError

from sqs_app import sqs_client
from sqs_app.errors import WipsieError
from sqs_app.queues import LOGICAL_QUEUES


class Command(BaseCommand):
    help = "Show approximate visible / in-flight / delayed messages per queue and dead letters."

    def handle(self, *args, **options):
        self.stdout.write(f"{'queue':<16} {'visible':>8} {'in flight':>10} {'delayed':>8} {'dead':>6}")
        try:
            for name in LOGICAL_QUEUES:
                depth = sqs_client.queue_depths(name)
                dead = sqs_client.queue_depths(name, dead_letters=True)["visible"]
                self.stdout.write(
                    f"{name:<16} {depth['visible']:>8} {depth['in_flight']:>10} "
                    f"{depth['delayed']:>8} {dead:>6}"
                )
        except WipsieError as exc:
            raise CommandError(f"{exc.error_code}: {exc.message}") from exc
