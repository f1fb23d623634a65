"""Each queue's depth, in flight, delayed, retrying, dead letters, oldest age and consumers (Celery's too)."""

from sqs_app import selectors
from sqs_app.management.base import OperatorCommand


class Command(OperatorCommand):
    help = (
        "Show visible / in-flight / delayed messages, those waiting to retry, dead letters, the age "
        "of the oldest open message (from the history) and the workers consuming each queue, with "
        "their last poll (STALLED when all of them stopped polling), Wipsie's own task queue `celery` "
        "included."
    )

    def run(self, **options):
        return selectors.queue_overview()

    def render(self, result):
        self.table(
            [
                "queue",
                "visible",
                "in flight",
                "delayed",
                "retrying",
                "dead",
                "oldest age (s)",
                "consumers",
                "last poll (s)",
            ],
            [
                [
                    r["name"],
                    r["visible"],
                    r["in_flight"],
                    r["delayed"],
                    r["retrying"],
                    r["dead"],
                    r["oldest_age_seconds"],
                    consumers_cell(r["consumers"]),
                    r["consumers"] and r["consumers"]["last_poll_age_seconds"],
                ]
                for r in result
            ],
        )
        for row in result:
            for process in (row["consumers"] or {}).get("processes", []):
                if process["stalled"]:
                    self.line(
                        f"{row['name']}: {process['hostname']} pid {process['pid']} last polled "
                        f"{process['last_poll_age_seconds']:.0f} s ago"
                    )


def consumers_cell(consumers: dict | None) -> str | None:
    """How many workers consume the queue ("STALLED (n)" when none still polls it); None when none does."""
    if not consumers:
        return None
    count = len(consumers["processes"])
    return str(count) if consumers["status"] == "ok" else f"STALLED ({count})"
