"""The worker's heartbeat: proof that its consumer is still polling its queues.

The worker's main process touches WIPSIE_HEARTBEAT_FILE each time it starts
a poll of a queue (tasks_app.sqs_transport), at most once a second; that
happens every CELERY_POLLING_INTERVAL while the worker is busy, and once per
long poll (CELERY_WAIT_TIME_SECONDS) while it is idle. A consumer that
stopped polling (the "deaf worker" of kombu's SQS transport) stops touching
it, and then:

- the worker's own watchdog exits the process after
  WIPSIE_WORKER_STALL_SECONDS, so that its supervisor starts a new one;
- `python -m tasks_app.heartbeat --max-age 60` exits 1, for a Kubernetes
  exec liveness probe or a compose health check.
"""

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

# Kept outside Django's settings so that the probe starts in milliseconds.
DEFAULT_HEARTBEAT_FILE = "/tmp/wipsie-heartbeat"  # noqa: S108 - one file per container


def heartbeat_path() -> Path:
    return Path(os.environ.get("WIPSIE_HEARTBEAT_FILE", DEFAULT_HEARTBEAT_FILE))


def beat(path: Path | None = None) -> None:
    # A read-only or missing directory must not stop the worker; the probe will say so.
    with contextlib.suppress(OSError):
        (path or heartbeat_path()).touch()


def age_seconds(path: Path | None = None) -> float | None:
    """Seconds since the last beat, or None when there never was one."""
    try:
        return time.time() - (path or heartbeat_path()).stat().st_mtime
    except FileNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Exit 0 if the worker polled its queues recently, else 1.")
    parser.add_argument("--max-age", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--file", type=Path, default=None, help="default: $WIPSIE_HEARTBEAT_FILE")
    args = parser.parse_args(argv)
    age = age_seconds(args.file)
    if age is None:
        print(f"no heartbeat at {args.file or heartbeat_path()}: the worker has not polled yet")
        return 1
    if age > args.max_age:
        print(f"last heartbeat {age:.0f} s ago (limit {args.max_age:.0f} s): the worker stopped polling")
        return 1
    print(f"ok: last heartbeat {age:.1f} s ago")
    return 0


if __name__ == "__main__":
    sys.exit(main())
