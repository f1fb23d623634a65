"""What /health reports: can Wipsie reach its database and SQS, and do the workers still poll?

A check returns nothing, or details for its entry; it fails by raising. The
`consumers` check reads the list every worker keeps up to date
(tasks_app.consumers): per queue its consumers and their last poll, an error
when all of a queue's consumers stopped polling.

Anyone may ask (probes, load balancers, monitors), but only staff get what
names the infrastructure: the workers' host names (pod names) and pids, and
the raw text of an unexpected error (a database driver's names the database's
host). Everyone else gets the same statuses, codes and ages, each queue's
consumers counted instead of listed, and an unexpected error's type; its text
goes to the log, with the request id.
"""

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connection

from . import sqs_client
from .errors import WipsieError

logger = logging.getLogger(__name__)


class CheckFailed(Exception):
    """A check that ran and found something wrong, with details for its entry."""

    def __init__(self, code: str, message: str, details: dict):
        super().__init__(message)
        self.code, self.message, self.details = code, message, details


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _sqs() -> None:
    # Someone (or a monitor) waits on this answer: a hung SQS is an error after
    # SQS_ADMIN_TIMEOUT_SECONDS, one attempt, not after the normal client's retries.
    with sqs_client.quick_calls():
        sqs_client.ping()


def _consumers() -> dict:
    from tasks_app.consumers import queue_consumers, stalled_queues

    queues = queue_consumers()
    stalled = stalled_queues(queues)
    if stalled:
        raise CheckFailed(
            "CONSUMERS_STALLED",
            f"No consumer of {', '.join(stalled)} has polled it for more than "
            f"{settings.WIPSIE_WORKER_STALL_SECONDS:g} s",
            {"queues": queues},
        )
    return {"queues": queues}


CHECKS: dict[str, Callable[[], dict | None]] = {"database": _database, "sqs": _sqs, "consumers": _consumers}


# Readiness asks only for what every page needs: an SQS blip, or a stuck
# worker, must not take every API pod (and the admin and history with it)
# out of service.
READINESS_CHECKS: dict[str, Callable[[], dict | None]] = {"database": _database}


def health_check(
    checks: dict[str, Callable[[], dict | None]] | None = None, *, detailed: bool = True
) -> dict:
    """{"status": "ok"|"error", "checks": {name: {"status", "latency_ms", "error"?, "message"?, ...}}}.

    A check's details (the consumers' queues) come after its status.
    `detailed=False`: for whoever is not staff (the module's docstring).
    """
    checks = {name: _run(name, check, detailed=detailed) for name, check in (checks or CHECKS).items()}
    overall = "ok" if all(c["status"] == "ok" for c in checks.values()) else "error"
    return {"status": overall, "checks": checks}


UNEXPECTED_MESSAGE = "Unexpected error; the server's log has its text."


def _run(name: str, check: Callable[[], dict | None], *, detailed: bool) -> dict:
    started = time.perf_counter()
    try:
        details = check() or {}
    except CheckFailed as exc:
        return {**_failed(started, exc.code, exc.message), **_shown(exc.details, detailed)}
    except WipsieError as exc:
        return _failed(started, exc.error_code, exc.message)
    except Exception as exc:  # noqa: BLE001 - a health check reports, it does not raise
        logger.warning("Health check %s failed: %s: %s", name, type(exc).__name__, exc)
        text = (str(exc).splitlines() or [""])[0] if detailed else UNEXPECTED_MESSAGE
        return _failed(started, type(exc).__name__, text)
    return {"status": "ok", "latency_ms": _elapsed_ms(started), **_shown(details, detailed)}


def _shown(details: dict, detailed: bool) -> dict:
    """A check's details as this caller may see them: the consumers' queues counted, not named."""
    from tasks_app.consumers import counted_consumers

    if detailed or "queues" not in details:
        return details
    return {**details, "queues": counted_consumers(details["queues"])}


def _failed(started: float, code: str, message: str) -> dict:
    return {"status": "error", "latency_ms": _elapsed_ms(started), "error": code, "message": message}


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
