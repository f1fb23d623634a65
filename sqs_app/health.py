"""What /health reports: can Wipsie reach its database and SQS right now?"""

import time
from collections.abc import Callable

from django.db import connection

from . import sqs_client
from .errors import WipsieError


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _sqs() -> None:
    # Someone (or a monitor) waits on this answer: a hung SQS is an error after
    # SQS_ADMIN_TIMEOUT_SECONDS, one attempt, not after the normal client's retries.
    with sqs_client.quick_calls():
        sqs_client.ping()


CHECKS: dict[str, Callable[[], None]] = {"database": _database, "sqs": _sqs}


# Readiness asks only for what every page needs: an SQS blip must not take
# every API pod (and the admin and history with it) out of service.
READINESS_CHECKS: dict[str, Callable[[], None]] = {"database": _database}


def health_check(checks: dict[str, Callable[[], None]] | None = None) -> dict:
    """{"status": "ok"|"error", "checks": {name: {"status", "latency_ms", "error"?}}}."""
    checks = {name: _run(check) for name, check in (checks or CHECKS).items()}
    overall = "ok" if all(c["status"] == "ok" for c in checks.values()) else "error"
    return {"status": overall, "checks": checks}


def _run(check: Callable[[], None]) -> dict:
    started = time.perf_counter()
    try:
        check()
    except WipsieError as exc:
        return _failed(started, exc.error_code, exc.message)
    except Exception as exc:  # noqa: BLE001 - a health check reports, it does not raise
        return _failed(started, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
    return {"status": "ok", "latency_ms": _elapsed_ms(started)}


def _failed(started: float, code: str, message: str) -> dict:
    return {"status": "error", "latency_ms": _elapsed_ms(started), "error": code, "message": message}


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
