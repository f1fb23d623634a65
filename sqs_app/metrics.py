"""Prometheus metrics beyond django-prometheus's request metrics, served at /metrics.

Counters are counted where things happen (services). Queue depths and message
counts by status are read at scrape time by a collector, so that they are right
whichever process (web, worker, beat) changed them.
"""

import logging

from django.db.models import Count
from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily

from . import selectors
from .errors import WipsieError
from .models import Message

logger = logging.getLogger(__name__)

MESSAGES_SENT = Counter(
    "wipsie_messages_sent_total", "Messages SQS accepted from this process", ["queue", "source"]
)
MESSAGES_RECEIVED = Counter("wipsie_messages_received_total", "Messages received via the API", ["queue"])
MESSAGES_DELETED = Counter("wipsie_messages_deleted_total", "Messages deleted via the API", ["queue"])


class WipsieCollector:
    """sqs_queue_size{queue_name, kind} (the spec's gauge) and wipsie_messages{queue, status}."""

    def describe(self):
        # Without describe(), registering would call collect() at start-up,
        # before migrations have made the tables.
        yield GaugeMetricFamily(
            "sqs_queue_size", "Approximate messages in the queue", labels=["queue_name", "kind"]
        )
        yield GaugeMetricFamily("wipsie_messages", "Messages in the history", labels=["queue", "status"])

    def collect(self):
        sizes = GaugeMetricFamily(
            "sqs_queue_size", "Approximate messages in the queue", labels=["queue_name", "kind"]
        )
        try:
            for row in selectors.queue_overview():
                for kind in ("visible", "in_flight", "delayed"):
                    sizes.add_metric([row["name"], kind], row[kind])
                sizes.add_metric([row["name"], "dead_letters"], row["dead"])
        except WipsieError as exc:
            logger.warning("Queue sizes unavailable for /metrics: %s", exc.error_code)
        yield sizes

        by_status = GaugeMetricFamily(
            "wipsie_messages", "Messages in the history, by queue and status", labels=["queue", "status"]
        )
        for row in Message.objects.values("queue", "status").annotate(n=Count("id")).order_by():
            by_status.add_metric([row["queue"], row["status"]], row["n"])
        yield by_status


_registered = False


def register_collector() -> None:
    global _registered
    if not _registered:
        REGISTRY.register(WipsieCollector())
        _registered = True
