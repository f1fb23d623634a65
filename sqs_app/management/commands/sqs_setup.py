"""Create Wipsie's four queues, Celery's task queue, and their DLQs. Safe to run again."""

from django.core.management.base import BaseCommand, CommandError

from sqs_app import sqs_client
from sqs_app.errors import WipsieError


class Command(BaseCommand):
    help = "Create (idempotently) the four Wipsie queues, Celery's task queue, and their DLQs."

    def handle(self, *args, **options):
        try:
            provisioned = sqs_client.ensure_all_queues()
        except WipsieError as exc:
            raise CommandError(f"{exc.error_code}: {exc.message} {exc.details or ''}") from exc
        for queue in provisioned:
            self.stdout.write(f"{queue.logical_name:<16} {queue.url}")
            self.stdout.write(f"{'  dead letters':<16} {queue.dlq_url}")
        self.stdout.write(self.style.SUCCESS(f"{len(provisioned)} queues ready."))
