"""Print each queue's depth, and its DLQ's, for an operator at a terminal."""

from django.core.management.base import BaseCommand, CommandError

from sqs_app import selectors
from sqs_app.errors import WipsieError


class Command(BaseCommand):
    help = "Show approximate visible / in-flight / delayed messages per queue and dead letters."

    def handle(self, *args, **options):
        self.stdout.write(f"{'queue':<16} {'visible':>8} {'in flight':>10} {'delayed':>8} {'dead':>6}")
        try:
            for row in selectors.queue_overview():
                self.stdout.write(
                    f"{row['name']:<16} {row['visible']:>8} {row['in_flight']:>10} "
                    f"{row['delayed']:>8} {row['dead']:>6}"
                )
        except WipsieError as exc:
            raise CommandError(f"{exc.error_code}: {exc.message}") from exc
