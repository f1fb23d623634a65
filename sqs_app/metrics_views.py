"""GET /metrics: every process's samples (multiprocess mode) and the queue gauges, for allowed scrapers.

Who may scrape is a setting (README, "Metrics"):
- METRICS_TOKEN: a scraper that sends `Authorization: Bearer <token>` is let in;
- METRICS_ALLOWED_IPS: addresses or networks (CIDR) let in without a token;
  by default only loopback, and nobody else unless METRICS_TOKEN is set.
Scrapers reach the pods directly, so REMOTE_ADDR is the scraper's address
(no proxy header is trusted here).
"""

import hmac
import ipaddress
import os
import threading

from django.conf import settings
from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from .errors import error_response
from .metrics import QueueCollector

_lock = threading.Lock()
_registry: CollectorRegistry | None = None


def metrics_registry() -> CollectorRegistry:
    """Built once per process: all processes' files in multiprocess mode, else this process's own."""
    global _registry
    with _lock:
        if _registry is None:
            if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                registry = CollectorRegistry()
                multiprocess.MultiProcessCollector(registry)
            else:
                registry = REGISTRY
            registry.register(QueueCollector())
            _registry = registry
        return _registry


def reset_registry() -> None:
    """Forget the registry (tests switch multiprocess mode and the cache interval)."""
    global _registry
    with _lock:
        if _registry is not None:
            for collector in list(getattr(_registry, "_collector_to_names", {})):
                if isinstance(collector, QueueCollector):
                    _registry.unregister(collector)
        _registry = None


def scrape_allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    if token:
        sent = request.headers.get("Authorization", "")
        if hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in settings.METRICS_ALLOWED_NETWORKS)


def metrics(request):
    if not scrape_allowed(request):
        return error_response(
            403,
            "PERMISSION_DENIED",
            "Metrics are only for the configured scrapers (METRICS_TOKEN, METRICS_ALLOWED_IPS).",
        )
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)
