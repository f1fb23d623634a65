"""A closed-loop load generator: N threads, each with its own connection, sending a
fixed number of requests in total as fast as the server answers.

Standard library only. Each thread builds its own `Sender` (one keep-alive
connection, or a share of one boto3 client), warms it up, waits for the others
at a barrier, then takes requests from a shared budget until it is spent or the
step's deadline passes. Every request's latency and status is kept.
"""

import http.client
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Outcome:
    """What one request did. `status` is "200", "HTTP 502 SQS_UNAVAILABLE", "ConnectionResetError"..."""

    ok: bool
    status: str
    messages_sent: int = 0
    messages_failed: int = 0
    answered: bool = True  # False when no response came back at all (no latency to record)


# One request. Made per thread, so it may hold the thread's connection.
Sender = Callable[[], Outcome]


@dataclass
class LoadResult:
    clients: int
    requests_planned: int
    latencies_ms: list[float | None] = field(default_factory=list)  # None: no answer at all
    statuses: list[str] = field(default_factory=list)
    messages_sent: int = 0
    messages_failed: int = 0
    errors: Counter = field(default_factory=Counter)  # status -> count, for every non-ok request
    warmup_errors: Counter = field(default_factory=Counter)
    wall_seconds: float = 0.0
    deadline_hit: bool = False

    @property
    def requests(self) -> int:
        return len(self.statuses)

    @property
    def failed_requests(self) -> int:
        return sum(self.errors.values())


class _Budget:
    """The requests left to send in a step, shared by all threads."""

    def __init__(self, total: int, deadline: float):
        self._left = total
        self._lock = threading.Lock()
        self.deadline = deadline
        self.deadline_hit = False

    def take(self) -> bool:
        with self._lock:
            if self._left <= 0:
                return False
            if time.monotonic() > self.deadline:
                self.deadline_hit = True
                return False
            self._left -= 1
            return True


def run_closed_loop(
    *,
    make_sender: Callable[[], Sender],
    clients: int,
    requests: int,
    warmup_per_client: int,
    max_seconds: float,
    on_start: Callable[[], None] = lambda: None,
    on_outcome: Callable[[Outcome], None] = lambda outcome: None,
) -> LoadResult:
    """Run one step. `on_start` runs once, after warm-up, right before the timed part."""
    result = LoadResult(clients=clients, requests_planned=requests)
    lock = threading.Lock()
    started: list[float] = []
    budget_box: list[_Budget] = []

    def start_timed_part() -> None:
        on_start()
        started.append(time.perf_counter())
        budget_box.append(_Budget(requests, time.monotonic() + max_seconds))

    barrier = threading.Barrier(clients, action=start_timed_part)

    crashes: list[BaseException] = []

    def client_thread() -> None:
        try:
            sender = make_sender()
            for _ in range(warmup_per_client):
                outcome = sender()
                on_outcome(outcome)
                if not outcome.ok:
                    with lock:
                        result.warmup_errors[outcome.status] += 1
            barrier.wait()
            budget = budget_box[0]
            while budget.take():
                began = time.perf_counter()
                outcome = sender()
                elapsed_ms = (time.perf_counter() - began) * 1000
                on_outcome(outcome)
                with lock:
                    _record(result, outcome, elapsed_ms)
        except threading.BrokenBarrierError:
            return  # another thread crashed; its exception is the one reported
        except BaseException as exc:
            # A bug in a sender must end the step, not leave the others waiting at the barrier.
            crashes.append(exc)
            barrier.abort()

    threads = [
        threading.Thread(target=client_thread, name=f"load-{index}", daemon=True) for index in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if crashes:
        raise RuntimeError(f"a load thread crashed: {crashes[0]!r}") from crashes[0]
    result.wall_seconds = time.perf_counter() - started[0] if started else 0.0
    result.deadline_hit = bool(budget_box) and budget_box[0].deadline_hit
    return result


def _record(result: LoadResult, outcome: Outcome, elapsed_ms: float) -> None:
    result.statuses.append(outcome.status)
    # A request that never got an answer has no latency; it is still counted as an error.
    result.latencies_ms.append(round(elapsed_ms, 3) if outcome.answered else None)
    result.messages_sent += outcome.messages_sent
    result.messages_failed += outcome.messages_failed
    if not outcome.ok:
        result.errors[outcome.status] += 1


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None for no values)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


# --- HTTP ------------------------------------------------------------------------------


class HttpJsonClient:
    """One keep-alive HTTP/1.1 connection; reconnects after a failure."""

    def __init__(self, host: str, port: int, headers: dict[str, str], timeout: float = 30.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.headers = {"Content-Type": "application/json", "Accept": "application/json", **headers}
        self.conn: http.client.HTTPConnection | None = None

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.conn.request("POST", path, body=body, headers=self.headers)
            response = self.conn.getresponse()
            return response.status, response.read()
        except Exception:
            # A broken keep-alive connection cannot be reused; the next request opens a new one.
            self.conn.close()
            self.conn = None
            raise


def http_outcome(status: int, payload: bytes, *, batch: bool) -> Outcome:
    """Classify an API response; a batch's per-message failures count as failed messages."""
    if not 200 <= status < 300:
        return Outcome(ok=False, status=f"HTTP {status} {_error_code(payload)}".rstrip())
    if not batch:
        return Outcome(ok=True, status=str(status), messages_sent=1)
    answer = json.loads(payload)
    failed = int(answer["failed"])
    return Outcome(
        ok=failed == 0,
        status=str(status) if failed == 0 else f"HTTP {status} with {failed} failed entries",
        messages_sent=int(answer["successful"]),
        messages_failed=failed,
    )


def _error_code(payload: bytes) -> str:
    """The `error.code` of Wipsie's error envelope, when the body is one."""
    try:
        return str(json.loads(payload)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return ""


def exception_outcome(exc: Exception, *, messages: int) -> Outcome:
    return Outcome(ok=False, status=type(exc).__name__, messages_failed=messages, answered=False)
