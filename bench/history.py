"""Read the message history (sqs_app_message) of the bench database directly.

The worker steps judge a task done when its history row says so, as the API's
GET /sqs/messages/{id} would, but without putting load on the web server: one
query per poll for all the messages of a step, found by the step's own
`correlation_id`. `finished_at` is written by the worker (timezone.now(), UTC),
on this machine, so it is on the same clock as the benchmark's time.time().
"""

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from .database import Database

TABLE = "sqs_app_message"
EVENTS = "sqs_app_messageevent"


@dataclass(frozen=True)
class Row:
    sqs_message_id: str | None
    status: str
    finished_at: float | None  # Unix time (seconds), None while unfinished


class History:
    """One autocommit connection to the bench database, so each query sees the latest commits."""

    def __init__(self, database: Database):
        self.engine = database.engine
        if self.engine == "postgresql":
            import psycopg

            self.conn = psycopg.connect(database.url, autocommit=True, connect_timeout=5)
        else:
            path = database.url.removeprefix("sqlite:///")
            self.conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)

    def close(self) -> None:
        self.conn.close()

    def rows(self, correlation_id: str) -> list[Row]:
        """Every history row of the messages sent with this correlation id."""
        mark = "%s" if self.engine == "postgresql" else "?"
        query = f"SELECT sqs_message_id, status, finished_at FROM {TABLE} WHERE correlation_id = {mark}"  # noqa: S608
        found = self.conn.execute(query, (correlation_id,)).fetchall()
        return [Row(message_id, status, _unix(finished)) for message_id, status, finished in found]

    def sessions(self) -> int | None:
        """Connections ever opened to the bench database (PostgreSQL 14+), None on SQLite. A
        backend that starts and exits between two CPU snapshots is not seen by the "db" probe, so
        connection churn shows here, and its CPU under "others"."""
        if self.engine != "postgresql":
            return None
        try:
            found = self.conn.execute(
                "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
            ).fetchone()
        except Exception:  # PostgreSQL before 14 has no `sessions`
            return None
        return int(found[0]) if found else None

    def events(self, correlation_id: str) -> dict[str, dict[str, float]]:
        """SQS message id -> event kind ("sent", "received", "processing", "succeeded"...) -> the
        first such event's time (Unix time). Where a message's time went, stage by stage."""
        mark = "%s" if self.engine == "postgresql" else "?"
        query = (
            f"SELECT m.sqs_message_id, e.kind, MIN(e.at) FROM {EVENTS} e JOIN {TABLE} m "  # noqa: S608
            f"ON m.id = e.message_id WHERE m.correlation_id = {mark} GROUP BY m.sqs_message_id, e.kind"
        )
        found: dict[str, dict[str, float]] = {}
        for message_id, kind, at in self.conn.execute(query, (correlation_id,)).fetchall():
            found.setdefault(message_id, {})[kind] = _unix(at)
        return found


def _unix(value) -> float | None:
    """A finished_at as Unix time: psycopg gives an aware datetime, SQLite Django's UTC text."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # Django stores UTC in SQLite (USE_TZ)
    return value.timestamp()
