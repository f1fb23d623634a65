"""Each queue's depth, in flight, delayed, dead letters and oldest message age (the four and Celery's)."""

from sqs_app import selectors
from sqs_app.management.base import OperatorCommand


class Command(OperatorCommand):
    help = (
        "Show visible / in-flight / delayed messages, dead letters and the age of the oldest open "
        "message (from the history) for each queue, Wipsie's own task queue `celery` included."
    )

    def run(self, **options):
        return selectors.queue_overview()

    def render(self, result):
        self.table(
            ["queue", "visible", "in flight", "delayed", "dead", "oldest age (s)"],
            [
                [r["name"], r["visible"], r["in_flight"], r["delayed"], r["dead"], r["oldest_age_seconds"]]
                for r in result
            ],
        )
