"""Which worker processes consume which queue, and whether they still poll it: one view for every process.

A worker's heartbeat file backs its own liveness probe, but no other process
can read it. So each worker's main process also records, every
WIPSIE_CONSUMER_RECORD_SECONDS (5), its host, its pid, the queues it consumes
and when it last polled each, in one upsert into `QueueConsumer`: the
database is the one store every process of every deployment shares.

- `queue_consumers()` is what /health, `sqs_queues` and /metrics read: per
  queue, its consumers and their last poll. A queue whose consumers have all
  been silent for longer than WIPSIE_WORKER_STALL_SECONDS is `stalled` (an
  error in /health, not in /health/ready); otherwise `ok`. A queue that no
  worker consumes is not listed.
- A worker that shuts down cleanly removes its rows. A killed one leaves
  them, shown as stalled, until WIPSIE_CONSUMER_FORGET_SECONDS after its
  last poll; then they are ignored and pruned. A worker restarted in the
  same container (same host, same pid) takes its old rows over.
- `PollRecorder` is the worker's side. The transport tells it of each poll
  (a dict write); its own thread writes them, so that a database that hangs
  never holds up the consumer's event loop, and it writes the time of the
  last poll, not the time of writing, so that a stuck event loop shows.
"""

import contextlib
import logging
import os
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

from celery.signals import worker_shutdown
from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from .models import QueueConsumer

logger = logging.getLogger(__name__)

PRUNE_EVERY_SECONDS = 60.0


def consumers_record(
    *, hostname: str, pid: int, started_at: datetime, last_polls: dict[str, datetime]
) -> None:
    """Upsert this process's row for each queue it polled (one statement)."""
    QueueConsumer.objects.bulk_create(
        [
            QueueConsumer(queue=queue, hostname=hostname, pid=pid, started_at=started_at, last_poll_at=at)
            for queue, at in sorted(last_polls.items())
        ],
        update_conflicts=True,
        unique_fields=["hostname", "pid", "queue"],
        update_fields=["started_at", "last_poll_at"],
    )


def consumers_remove(*, hostname: str, pid: int) -> int:
    """A worker that stops cleanly leaves the list."""
    deleted, _ = QueueConsumer.objects.filter(hostname=hostname, pid=pid).delete()
    return deleted


def consumers_prune(*, now: datetime | None = None) -> int:
    """Forget consumers that have not polled for WIPSIE_CONSUMER_FORGET_SECONDS (killed, never back)."""
    deleted, _ = QueueConsumer.objects.filter(last_poll_at__lt=_forget_before(now or timezone.now())).delete()
    return deleted


def queue_consumers(*, now: datetime | None = None) -> dict[str, dict]:
    """Per consumed queue: {"status": "ok"|"stalled", "last_poll_age_seconds", "processes": [...]}.

    `last_poll_age_seconds` is the freshest poll of any of the queue's
    consumers; each process is {"hostname", "pid", "last_poll_age_seconds",
    "stalled"}. Queues in name order, processes by host and pid.
    """
    now = now or timezone.now()
    stall = settings.WIPSIE_WORKER_STALL_SECONDS
    queues: dict[str, dict] = {}
    for row in QueueConsumer.objects.filter(last_poll_at__gte=_forget_before(now)):
        age = max(0.0, round((now - row.last_poll_at).total_seconds(), 1))
        entry = queues.setdefault(
            row.queue, {"status": "stalled", "last_poll_age_seconds": age, "processes": []}
        )
        stalled = bool(stall) and age > stall
        entry["processes"].append(
            {"hostname": row.hostname, "pid": row.pid, "last_poll_age_seconds": age, "stalled": stalled}
        )
        entry["last_poll_age_seconds"] = min(entry["last_poll_age_seconds"], age)
        if not stalled:
            entry["status"] = "ok"
    return dict(sorted(queues.items()))


def counted_consumers(consumers: dict[str, dict]) -> dict[str, dict]:
    """`queue_consumers()` with each queue's processes counted instead of named (no host, no pid)."""
    return {
        queue: {
            "status": entry["status"],
            "last_poll_age_seconds": entry["last_poll_age_seconds"],
            "consumers": len(entry["processes"]),
            "stalled_consumers": sum(1 for process in entry["processes"] if process["stalled"]),
        }
        for queue, entry in consumers.items()
    }


def stalled_queues(consumers: dict[str, dict]) -> list[str]:
    return [queue for queue, entry in consumers.items() if entry["status"] == "stalled"]


def _forget_before(now: datetime) -> datetime:
    return now - timedelta(seconds=settings.WIPSIE_CONSUMER_FORGET_SECONDS)


class PollRecorder:
    """The worker's main process: remembers each queue's last poll, and records it from a thread."""

    def __init__(self):
        self._polled: dict[str, float] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._failing = False
        self._pruned_at = float("-inf")
        self.hostname = ""
        self.pid = 0
        self.started_at: datetime | None = None

    def polled(self, queue: str) -> None:
        """The consumer starts a poll of `queue` (tasks_app.sqs_transport)."""
        self._polled[queue] = time.time()

    def start(self) -> None:
        if self._thread is not None:
            return
        self.hostname, self.pid, self.started_at = socket.gethostname(), os.getpid(), timezone.now()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="wipsie-poll-recorder", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """A clean shutdown: stop recording, and leave the list."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=10)
        self._thread = None
        try:
            consumers_remove(hostname=self.hostname, pid=self.pid)
        except DatabaseError as exc:
            logger.warning("Could not remove this worker from the consumer list (%s); it ages out", exc)
            return
        logger.info(
            "Worker %s:%s stopped consuming %s",
            self.hostname,
            self.pid,
            ", ".join(sorted(self._polled)) or "-",
        )

    def record(self) -> None:
        """Write the last poll of each queue polled so far (and, once a minute, prune the forgotten)."""
        if not self._polled:
            return
        last_polls = {queue: datetime.fromtimestamp(at, tz=UTC) for queue, at in dict(self._polled).items()}
        try:
            consumers_record(
                hostname=self.hostname, pid=self.pid, started_at=self.started_at, last_polls=last_polls
            )
            if time.monotonic() - self._pruned_at >= PRUNE_EVERY_SECONDS:
                consumers_prune()
                self._pruned_at = time.monotonic()
        except DatabaseError as exc:
            if not self._failing:
                logger.warning("Could not record this worker's polls (%s); retrying every few seconds", exc)
            self._failing = True
            return
        if self._failing:
            logger.info("Recording this worker's polls again")
            self._failing = False

    def _run(self) -> None:
        interval = settings.WIPSIE_CONSUMER_RECORD_SECONDS
        while not self._stop.wait(interval):
            try:
                self.record()
            except Exception:
                logger.exception("Recording this worker's polls failed")
            finally:
                # This thread's own connection, closed after each write: a pool
                # process forked later must not inherit it open (the child
                # freeing it would end the session under this thread).
                with contextlib.suppress(DatabaseError):
                    connection.close()


RECORDER = PollRecorder()


@worker_shutdown.connect
def _leave_the_consumer_list(**kwargs) -> None:
    RECORDER.stop()
