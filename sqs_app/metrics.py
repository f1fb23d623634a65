"""Prometheus metrics, served at /metrics (sqs_app.metrics_views), right across many processes.

- Counters and histograms are counted where things happen (the API middleware,
  the services, the workers' Celery signals in tasks_app.metrics). With
  PROMETHEUS_MULTIPROC_DIR set, prometheus_client keeps every process's
  samples in files there, and /metrics merges them: a counter is the sum over
  all gunicorn workers (and, in the same directory, Celery's pool processes),
  so it never appears to reset between scrapes answered by different processes.
  gunicorn's child_exit hook and Celery's worker_process_shutdown mark a dead
  process's live gauges as gone.
- Queue gauges are read at scrape time by `QueueCollector`, at most once per
  METRICS_CACHE_SECONDS per process (one SQS round per interval, however often
  Prometheus or several Prometheus servers scrape), and the history gauges
  from the (queue, status, created_at) index over the open messages only.
  The consumer gauges (how many workers consume each queue, and how long ago
  the freshest of them polled it) come from the workers' consumer list
  (tasks_app.consumers), in the same read.
"""

import logging
import threading
import time

from django.conf import settings
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from . import selectors
from .errors import WipsieError
from .queues import CELERY_QUEUE

logger = logging.getLogger(__name__)

# --- The spec's names ---------------------------------------------------------------

API_REQUESTS = Counter("api_requests_total", "Total API requests", ["method", "endpoint"])
API_REQUEST_DURATION = Histogram(
    "api_request_duration_seconds",
    "Request duration",
    ["method", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25),
)

# --- Wipsie's own counters ------------------------------------------------------------

MESSAGES_SENT = Counter("wipsie_messages_sent_total", "Messages SQS accepted", ["queue", "source"])
MESSAGES_RECEIVED = Counter("wipsie_messages_received_total", "Messages received via the API", ["queue"])
MESSAGES_DELETED = Counter("wipsie_messages_deleted_total", "Messages deleted via the API", ["queue"])

QUEUE_GAUGES = {
    # name: (row key, help)
    "sqs_queue_size": ("visible", "Approximate visible messages in the queue"),
    "sqs_queue_in_flight": ("in_flight", "Approximate messages received and not yet deleted"),
    "sqs_queue_delayed": ("delayed", "Approximate messages delayed, not yet visible"),
    "sqs_dlq_size": ("dead", "Approximate messages in the queue's dead-letter queue"),
}
OLDEST_AGE = "sqs_queue_oldest_message_age_seconds"


CONSUMERS = "wipsie_queue_consumers"
LAST_POLL_AGE = "wipsie_queue_last_poll_age_seconds"


class QueueCollector:
    """Queue depths, dead letters, the oldest open message's age, open messages by status, consumers."""

    def __init__(self):
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._rows: list[dict] | None = None
        self._open: dict = {}
        self._consumers: dict = {}

    def describe(self):
        # Without describe(), registering would call collect() at start-up,
        # before migrations have made the tables.
        return []

    def collect(self):
        rows, open_messages, consumers = self._cached()
        families = {
            name: GaugeMetricFamily(name, help_text, labels=["queue_name"])
            for name, (_, help_text) in QUEUE_GAUGES.items()
        }
        age = GaugeMetricFamily(
            OLDEST_AGE,
            "Age of the oldest open (sent, not yet finished) message, from the history; 0 when none",
            labels=["queue_name"],
        )
        for row in rows or []:
            for name, (key, _) in QUEUE_GAUGES.items():
                families[name].add_metric([row["name"]], row[key])
            if row["name"] != CELERY_QUEUE:  # no history for Celery's own queue
                age.add_metric([row["name"]], row["oldest_age_seconds"] or 0)
        yield from families.values()
        yield age
        up = GaugeMetricFamily("wipsie_sqs_up", "1 when the last read of the queues from SQS succeeded")
        up.add_metric([], 1 if rows is not None else 0)
        yield up
        by_status = GaugeMetricFamily(
            "wipsie_messages_open",
            "Open messages in the history, by queue and status",
            labels=["queue", "status"],
        )
        for queue, entry in open_messages.items():
            for status, count in entry["by_status"].items():
                by_status.add_metric([queue, status], count)
        yield by_status
        yield from self._consumer_gauges(consumers)

    def _consumer_gauges(self, consumers: dict):
        count = GaugeMetricFamily(
            CONSUMERS, "Worker processes consuming the queue (stalled ones included)", labels=["queue_name"]
        )
        age = GaugeMetricFamily(
            LAST_POLL_AGE,
            "Seconds since any consumer of the queue last polled it (only for consumed queues)",
            labels=["queue_name"],
        )
        for queue, entry in consumers.items():
            count.add_metric([queue], len(entry["processes"]))
            age.add_metric([queue], entry["last_poll_age_seconds"])
        yield count
        yield age

    def _cached(self):
        with self._lock:
            if time.monotonic() - self._read_at >= settings.METRICS_CACHE_SECONDS:
                self._rows, self._open, self._consumers = self._read()
                self._read_at = time.monotonic()
            return self._rows, self._open, self._consumers

    def _read(self):
        from tasks_app.consumers import queue_consumers

        try:
            open_messages = selectors.open_messages_by_queue()
            consumers = queue_consumers()
        except Exception:  # noqa: BLE001 - a scrape reports what it can
            logger.warning("History gauges unavailable for /metrics", exc_info=True)
            open_messages, consumers = {}, {}
        try:
            rows = selectors.queue_overview()
        except WipsieError as exc:
            logger.warning("Queue sizes unavailable for /metrics: %s", exc.error_code)
            rows = None
        return rows, open_messages, consumers


def route_of(request) -> str:
    """The route pattern that served the request ("/sqs/receive/<segment:queue_name>"): bounded labels."""
    match = getattr(request, "resolver_match", None)
    if match is None or match.route is None:
        return "unmatched"
    return "/" + match.route.lstrip("^").rstrip("$")


class ApiMetricsMiddleware:
    """api_requests_total and api_request_duration_seconds for every request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        endpoint = route_of(request)
        API_REQUESTS.labels(method=request.method, endpoint=endpoint).inc()
        API_REQUEST_DURATION.labels(method=request.method, endpoint=endpoint).observe(
            time.perf_counter() - started
        )
        return response
