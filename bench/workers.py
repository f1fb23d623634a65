"""The worker steps: a Celery worker's throughput, and the end-to-end latency of a task.

- `DrainStep` and `CeilingStep` are the emulator's own figures, plain boto3,
  no worker running: how fast it lets a client take messages off a queue
  (receive ten, delete ten in a batch), and how fast it serves the calls a
  Wipsie worker makes (receive ten, delete each).
- `CountStep` counts exactly what a worker asks per task: SQS calls (through a
  counting proxy), SQL statements (PostgreSQL's statement log) and new
  database connections.
- `IdleStep` measures the CPU the worker, moto and the database spend while
  the worker only polls its queues: a background that every per-task CPU
  figure contains.
- `ThroughputStep` measures tasks/s of one worker (`celery -A wipsie_site
  worker --concurrency 2`) on trivial "processing" tasks, from the first to
  the last `succeeded` in the history. Either the queue is preloaded while the
  worker is paused (SIGSTOP), or it is fed as the worker goes, so that it stays
  near empty.
- `EndToEndStep` sends messages through POST /sqs/send at a steady rate and
  measures, per message, the time from the send's start to the history row's
  `finished_at`.

The worker is started once (`Worker`), after the API steps, and stopped with
its whole process group.
"""

import json
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

from botocore.exceptions import BotoCoreError, ClientError

from . import procs
from .history import History, Row
from .load import HttpJsonClient, LoadResult, http_outcome, percentile
from .steps import BATCH_SIZE, Context, CpuMeter, StepResult

TASK_QUEUE = "task_processing"  # logical name; the worker consumes wipsie-task-processing
CELERY_QUEUE = "celery"  # Celery's own task queue, wipsie-celery
# Trivial work: statistics over three records.
TASK_DATA = {
    "operation": "analysis",
    "input_data": [{"v": 1, "w": 2.5}, {"v": 3, "w": 4.0}, {"v": 5, "w": 0.5}],
    "output_format": "json",
}
POLL_SECONDS = 0.05  # how often the history is read while waiting for outcomes
FINISHED = {"succeeded", "failed", "dead_lettered", "deleted"}
# The worker's environment on top of the web server's. A long poll of 1 s (production: 10 s)
# as in the e2e tests: the worker stops within about a second, and moto's long poll, which
# holds one of its threads per queue, is shorter.
WORKER_ENV = {"CELERY_WAIT_TIME_SECONDS": "1", "LOG_LEVEL": "WARNING"}
WORKER_CONCURRENCY = 2
# As in production (k8s/worker-deployment.yaml), without its "-l INFO": LOG_LEVEL=WARNING.
WORKER_ARGS = ["-A", "wipsie_site", "worker", "--concurrency", str(WORKER_CONCURRENCY)]


def processing_message(correlation_id: str, number: int) -> dict:
    """What a client posts: a processing task, marked with its step's correlation id."""
    return {
        "task_type": "processing",
        "priority": "medium",
        "message": f"bench task {number}",
        "correlation_id": correlation_id,
        "data": TASK_DATA,
    }


def standard_body(correlation_id: str, number: int) -> str:
    """The StandardMessage Wipsie would put in SQS for `processing_message`: what a producer
    sending straight to the queue (a Lambda, a script) sends."""
    body = processing_message(correlation_id, number) | {
        "id": str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).isoformat(),
        "source": "lambda",
        "queue": TASK_QUEUE,
    }
    return json.dumps(body, separators=(",", ":"))


def new_marker(kind: str) -> str:
    return f"bench-{kind}-{uuid.uuid4().hex[:12]}"


def preload(client, queue_url: str, correlation_id: str, count: int, first: int = 0) -> int:
    """Put `count` messages on the queue with SendMessageBatch; the number accepted."""
    sent = 0
    for start in range(first, first + count, BATCH_SIZE):
        size = min(BATCH_SIZE, first + count - start)
        entries = [
            {"Id": str(index), "MessageBody": standard_body(correlation_id, start + index)}
            for index in range(size)
        ]
        response = client.send_message_batch(QueueUrl=queue_url, Entries=entries)
        sent += len(response.get("Successful", []))
    return sent


def _summary(rows: list[Row]) -> Counter:
    return Counter(row.status for row in rows)


def wait_for_outcomes(
    history: History,
    correlation_id: str,
    expected: int,
    deadline: float,
    alive: Callable[[], bool] = lambda: True,
) -> list[Row]:
    """Read the history until `expected` rows of the step are finished, or the deadline."""
    while True:
        rows = history.rows(correlation_id)
        if sum(row.status in FINISHED for row in rows) >= expected:
            return rows
        if time.monotonic() > deadline or not alive():
            return rows
        time.sleep(POLL_SECONDS)


# --- The worker --------------------------------------------------------------------


class Worker:
    """One `celery -A wipsie_site worker`, in a process group of its own."""

    def __init__(self, processes: procs.Processes, env: dict[str, str], name: str = "worker"):
        self.processes = processes
        self.env = {**env, **WORKER_ENV}
        self.name = name
        self.process = None

    def start(self, context: Context, *, warm_up: int = 10, timeout: float = 90.0) -> float:
        """Start it, and wait until it has processed `warm_up` tasks (each pool process its first:
        imports, database pool, queue URLs). Seconds it took."""
        began = time.monotonic()
        argv = [str(procs.BIN / "celery"), *WORKER_ARGS]
        self.process = self.processes.start(self.name, argv, self.env, group=True)
        marker = new_marker("warmup")
        preload(context.sqs_client, context.queue_urls[TASK_QUEUE], marker, warm_up)
        rows = wait_for_outcomes(
            context.history, marker, warm_up, time.monotonic() + timeout, alive=self.alive
        )
        log_path, log_tail = self.processes.log_path(self.name), self.processes.log_tail(self.name)
        log = f"\n--- last lines of {log_path} ---\n{log_tail}"
        if not self.alive():
            raise procs.StartupError(f"the Celery worker exited with status {self.process.returncode}{log}")
        done = _summary(rows)
        if done["succeeded"] < warm_up:
            raise procs.StartupError(
                f"the Celery worker finished {done['succeeded']} of {warm_up} warm-up tasks in "
                f"{timeout:.0f} s (history: {dict(done) or 'no rows'}){log}"
            )
        return time.monotonic() - began

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def pids(self) -> list[int]:
        return procs.process_tree(self.process.pid) if self.process else []

    def probes(self) -> list[procs.CpuProbe]:
        """The main process (the consumers: polling, the hand-off, Celery's own queue) and the pool
        processes (the tasks). `worker CPU` is their sum."""
        return [
            procs.CpuProbe("worker_consumer", lambda: self.pids()[:1]),
            procs.CpuProbe("worker_pool", lambda: self.pids()[1:]),
        ]

    def pause(self) -> None:
        self.processes.signal(self.process, signal.SIGSTOP)

    def resume(self) -> None:
        self.processes.signal(self.process, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None:
            self.processes.stop(self.process)
            self.process = None


# --- Steps -------------------------------------------------------------------------


def _result(
    name: str,
    kind: str,
    *,
    clients: int,
    statuses: list[str],
    latencies_ms: list[float | None] | None = None,
    window: float,
    planned: int,
    deadline_hit: bool,
    extra: dict,
) -> StepResult:
    load = LoadResult(clients=clients, requests_planned=planned)
    load.statuses = statuses
    load.latencies_ms = latencies_ms if latencies_ms is not None else [None] * len(statuses)
    load.messages_sent = sum(status == "succeeded" for status in statuses)
    load.messages_failed = len(statuses) - load.messages_sent
    load.errors = Counter(status for status in statuses if status != "succeeded")
    load.wall_seconds = window
    load.deadline_hit = deadline_hit
    return StepResult(
        name=name, kind=kind, path=TASK_QUEUE, clients=clients, messages_per_request=1, load=load, extra=extra
    )


def _difference(after: int | None, before: int | None) -> int | None:
    return after - before if after is not None and before is not None else None


def _rate(count: int, seconds: float) -> float | None:
    return count / seconds if seconds > 0 else None


def _span_rate(times: list[float]) -> float | None:
    """Events per second from the first to the last of `times`."""
    times = sorted(times)
    return _rate(len(times) - 1, times[-1] - times[0]) if len(times) > 1 else None


# Where a message's time goes, from the client's send start to its outcome.
STAGES = [
    ("send start -> sent", "start", "sent"),  # the API, and SQS accepting the message
    ("sent -> received", "sent", "received"),  # waiting in the task queue; the hand-off's first write
    ("received -> processing", "received", "processing"),  # hand-off; the task on Celery's queue
    ("processing -> succeeded", "processing", "succeeded"),  # the task itself
]


def stage_percentiles(times: list[dict[str, float]]) -> dict[str, dict[str, float | None]]:
    """P50 / P95 / max in ms of each stage, over the messages that have both ends."""
    found = {}
    for label, begin, end in STAGES:
        spans = sorted((t[end] - t[begin]) * 1000 for t in times if begin in t and end in t)
        found[label] = {
            "p50_ms": percentile(spans, 0.50),
            "p95_ms": percentile(spans, 0.95),
            "max_ms": spans[-1] if spans else None,
        }
    return found


@dataclass(frozen=True)
class DrainStep:
    """Plain boto3: ReceiveMessage (up to 10) + DeleteMessageBatch until a preloaded queue is empty."""

    messages: int
    max_seconds: float
    name: str = "boto3 receive(10) + delete_batch"

    def run(self, context: Context) -> StepResult:
        client, url = context.sqs_client, context.queue_urls[TASK_QUEUE]
        client.purge_queue(QueueUrl=url)
        preload(client, url, new_marker("drain"), self.messages)
        meter = CpuMeter(context.probes)
        statuses: list[str] = []
        calls = 0
        meter.start()
        began = time.perf_counter()
        deadline = time.monotonic() + self.max_seconds
        while len(statuses) < self.messages and time.monotonic() < deadline:
            try:
                got = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
                calls += 1
                messages = got.get("Messages", [])
                if not messages:
                    continue
                entries = [
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(messages)
                ]
                deleted = client.delete_message_batch(QueueUrl=url, Entries=entries)
                calls += 1
            except (ClientError, BotoCoreError) as exc:
                statuses.append(type(exc).__name__)
                continue
            statuses += ["succeeded"] * len(deleted.get("Successful", []))
            statuses += ["delete failed"] * len(deleted.get("Failed", []))
        window = time.perf_counter() - began
        result = _result(
            self.name,
            "baseline",
            clients=1,
            statuses=statuses,
            window=window,
            planned=self.messages,
            deadline_hit=len(statuses) < self.messages,
            extra={
                "method": f"{self.messages} preloaded",
                "sqs_calls": calls,
                "rate": _rate(len(statuses), window),
            },
        )
        meter.finish(result)
        client.purge_queue(QueueUrl=url)
        return result


@dataclass(frozen=True)
class CeilingStep:
    """Plain boto3, the SQS calls a Wipsie worker makes per task: one ReceiveMessage of up to
    ten messages, then one DeleteMessage each, until a preloaded queue is empty. The emulator's
    own ceiling for Wipsie's pattern, with no worker, no Celery and no database."""

    messages: int
    max_seconds: float
    name: str = "boto3 receive(10) + delete each"

    def run(self, context: Context) -> StepResult:
        client, url = context.sqs_client, context.queue_urls[TASK_QUEUE]
        client.purge_queue(QueueUrl=url)
        preload(client, url, new_marker("ceiling"), self.messages)
        meter = CpuMeter(context.probes)
        statuses: list[str] = []
        meter.start()
        began = time.perf_counter()
        deadline = time.monotonic() + self.max_seconds
        while len(statuses) < self.messages and time.monotonic() < deadline:
            try:
                got = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
                for message in got.get("Messages", []):
                    client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                    statuses.append("succeeded")
            except (ClientError, BotoCoreError) as exc:
                statuses.append(type(exc).__name__)
        window = time.perf_counter() - began
        result = _result(
            self.name,
            "baseline",
            clients=1,
            statuses=statuses,
            window=window,
            planned=self.messages,
            deadline_hit=len(statuses) < self.messages,
            extra={"method": f"{self.messages} preloaded", "rate": _rate(len(statuses), window)},
        )
        meter.finish(result)
        client.purge_queue(QueueUrl=url)
        return result


@dataclass(frozen=True)
class CountStep:
    """Exact SQS calls, SQL statements and new database connections per task.

    A worker of its own (the timed one is stopped by then) talks to SQS through a counting
    proxy and to PostgreSQL as a role whose statements the server logs (bench.counting).
    Both cost time, so this step's rate is not judged; its counts are exact.
    """

    messages: int
    max_seconds: float
    processes: procs.Processes
    env: dict
    name: str = "Worker, counted"

    def run(self, context: Context) -> StepResult:
        import psycopg

        from .counting import CountingProxy, StatementLog, postgres_log_path, prepare_counting_role

        database_url = self.env["DATABASE_URL"]
        parts = urlsplit(database_url)
        if not parts.scheme.startswith("postgres"):
            return self._skipped("needs PostgreSQL")
        maintenance = urlunsplit(parts._replace(path="/postgres"))
        with psycopg.connect(maintenance, autocommit=True) as conn:
            log_path = postgres_log_path(conn)
        if log_path is None:
            return self._skipped("PostgreSQL's log file is not readable here")
        role = "wipsie_bench_counted"
        prepare_counting_role(maintenance, parts.path.lstrip("/"), role)
        proxy = CountingProxy(context.sqs_endpoint)
        endpoint = proxy.start()
        counted_url = urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port or 5432}"))
        worker = Worker(
            self.processes,
            {
                **self.env,
                "DATABASE_URL": counted_url,
                "AWS_ENDPOINT_URL_SQS": endpoint,
                "AWS_ENDPOINT_URL_SNS": endpoint,
            },
            name="worker-counted",
        )
        statements = StatementLog(role=role, path=log_path)
        try:
            worker.start(context, warm_up=10)
            marker = new_marker("counted")
            proxy.calls.clear()
            statements.mark()
            sessions = context.history.sessions()
            began = time.time()
            sent = preload(context.sqs_client, context.queue_urls[TASK_QUEUE], marker, self.messages)
            rows = wait_for_outcomes(
                context.history, marker, sent, time.monotonic() + self.max_seconds, alive=worker.alive
            )
            # Held until the last delete has been sent; the proxy counts it on arrival.
            time.sleep(0.5)
            calls = dict(proxy.calls)
            logged = statements.statements()
            opened = _difference(context.history.sessions(), sessions)
        finally:
            worker.stop()
            proxy.stop()
        done = sum(row.status == "succeeded" for row in rows)
        kinds = Counter(statement.split(None, 1)[0].upper() for statement in logged if statement.strip())

        def per_task(count: int) -> float | None:
            return count / done if done else None

        result = _result(
            self.name,
            "counted",
            clients=WORKER_CONCURRENCY,
            statuses=[row.status for row in rows],
            window=time.time() - began,
            planned=self.messages,
            deadline_hit=done < self.messages,
            extra={
                "method": f"{sent} preloaded, through a counting proxy",
                "sqs_calls": calls,
                "sqs_calls_per_task": per_task(sum(calls.values())),
                "sqs_calls_per_task_by_action": {k: per_task(v) for k, v in sorted(calls.items())},
                "sql_statements": len(logged),
                # Data statements; BEGIN / COMMIT (one round trip each) are reported beside them.
                "sql_statements_per_task": per_task(
                    len(logged)
                    - sum(kinds[k] for k in ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "ROLLBACK"))
                ),
                "sql_round_trips_per_task": per_task(len(logged)),
                "sql_statements_per_task_by_kind": {k: per_task(v) for k, v in sorted(kinds.items())},
                "db_sessions": opened,
                "db_sessions_per_task": per_task(opened) if opened is not None else None,
            },
        )
        return result

    def _skipped(self, why: str) -> StepResult:
        return _result(
            self.name,
            "counted",
            clients=WORKER_CONCURRENCY,
            statuses=[],
            window=0.0,
            planned=0,
            deadline_hit=False,
            extra={"method": f"skipped: {why}"},
        )


@dataclass(frozen=True)
class IdleStep:
    """The worker's and moto's CPU while the worker has nothing to do: its consumers polling four
    queues (long polls of CELERY_WAIT_TIME_SECONDS, then CELERY_POLLING_INTERVAL pauses). At low
    task rates this background is a large part of the CPU per task."""

    seconds: float
    name: str = "Worker idle"

    def run(self, context: Context) -> StepResult:
        meter = CpuMeter([*context.probes, *context.worker.probes()])
        meter.start()
        began = time.perf_counter()
        time.sleep(self.seconds)
        result = _result(
            self.name,
            "idle",
            clients=WORKER_CONCURRENCY,
            statuses=[],
            window=time.perf_counter() - began,
            planned=0,
            deadline_hit=False,
            extra={"method": f"{self.seconds:g} s, no messages"},
        )
        meter.finish(result)
        result.extra["cpu_ms_per_s"] = {
            name: (seconds * 1000 / result.load.wall_seconds if seconds is not None else None)
            for name, seconds in result.cpu_seconds.items()
        }
        return result


@dataclass(frozen=True)
class ThroughputStep:
    """Tasks/s of the worker, from the first to the last `succeeded` in the history.

    `feed` None: the queue is preloaded with all the messages while the worker is paused
    (SIGSTOP to its process group), then the worker is resumed. moto scans the whole queue
    on every receive and delete, so the first tasks pay for a deep queue.
    `feed` K: the messages are sent in batches of 10 as the worker goes, so that no more than
    K are ever waiting or in progress: the queue stays near empty, the worker never starves.
    """

    messages: int
    max_seconds: float
    feed: int | None = None
    judged: bool = False  # the step whose rate is judged against the target

    @property
    def name(self) -> str:
        return "Worker, steady feed" if self.feed else "Worker, preloaded queue"

    def run(self, context: Context) -> StepResult:
        worker, history = context.worker, context.history
        marker = new_marker("feed" if self.feed else "preload")
        url = context.queue_urls[TASK_QUEUE]
        meter = CpuMeter([*context.probes, *worker.probes()])
        sessions = history.sessions()
        sent = 0
        if self.feed is None:
            worker.pause()
            try:
                sent = preload(context.sqs_client, url, marker, self.messages)
            finally:
                meter.start()
                began = time.time()
                worker.resume()
        else:
            meter.start()
            began = time.time()
        deadline = time.monotonic() + self.max_seconds
        batches = 0
        while self.feed is not None and sent < self.messages:
            done = sum(row.status in FINISHED for row in history.rows(marker))
            if sent - done <= self.feed - BATCH_SIZE:
                sent += preload(context.sqs_client, url, marker, min(BATCH_SIZE, self.messages - sent), sent)
                batches += 1
                continue
            if time.monotonic() > deadline or not worker.alive():
                break
            time.sleep(POLL_SECONDS)
        rows = wait_for_outcomes(history, marker, sent, deadline, alive=worker.alive)
        done_at = time.time()
        opened = _difference(history.sessions(), sessions)
        events = history.events(marker).values()
        succeeded = sorted(row.finished_at for row in rows if row.status == "succeeded" and row.finished_at)
        window = succeeded[-1] - succeeded[0] if len(succeeded) > 1 else 0.0
        statuses = [row.status if row.status in FINISHED else f"unfinished: {row.status}" for row in rows]
        statuses += ["not received"] * (sent - len(rows)) + ["not sent"] * (self.messages - sent)
        result = _result(
            self.name,
            "worker",
            clients=WORKER_CONCURRENCY,
            statuses=statuses,
            window=window,
            planned=self.messages,
            deadline_hit=len(succeeded) < self.messages,
            extra={
                "method": (
                    f"fed {BATCH_SIZE} at a time, <= {self.feed} in queue/in progress"
                    if self.feed
                    else f"{sent} preloaded, worker paused"
                ),
                "rate": _rate(len(succeeded) - 1, window),  # first to last succeeded
                "rate_from_start": _rate(len(succeeded), (succeeded[-1] - began) if succeeded else 0.0),
                "first_succeeded_after_s": succeeded[0] - began if succeeded else None,
                # The consumer's hand-offs (history row `received`) against the tasks' outcomes.
                "handoff_rate": _span_rate([e["received"] for e in events if "received" in e]),
                "task_start_rate": _span_rate([e["processing"] for e in events if "processing" in e]),
                "cpu_window_s": done_at - began,
                "feed_batches": batches,
                "db_sessions": opened,
                "db_sessions_per_task": opened / len(rows) if opened is not None and rows else None,
                "judged": self.judged,
            },
        )
        meter.finish(result)
        if result.load.deadline_hit:
            # What is left would be processed during the next steps and blur their figures.
            for name in (TASK_QUEUE, CELERY_QUEUE):
                context.sqs_client.purge_queue(QueueUrl=context.queue_urls[name])
        return result


@dataclass(frozen=True)
class EndToEndStep:
    """POST /sqs/send (through gunicorn, with the JWT), one at a time at `rate` per second, to the
    worker's queue; latency = the row's finished_at - the client's send start (same clock)."""

    messages: int
    rate: float
    max_wait: float
    name: str = "POST /sqs/send -> succeeded"

    def run(self, context: Context) -> StepResult:
        marker = new_marker("e2e")
        auth = {"Authorization": f"Bearer {context.token}"}
        http = HttpJsonClient(context.api_host, context.api_port, auth)
        meter = CpuMeter([*context.probes, *context.worker.probes()])
        sessions = context.history.sessions()
        sends: dict[str, float] = {}  # SQS message id -> send start (Unix time)
        send_ms: list[float] = []
        send_errors: Counter = Counter()
        meter.start()
        began, start = time.time(), time.monotonic()
        for number in range(self.messages):
            pause = start + number / self.rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            payload = {"queue_name": TASK_QUEUE, "message": processing_message(marker, number)}
            sent_at, clock = time.time(), time.perf_counter()
            try:
                status, answer = http.post("/sqs/send", json.dumps(payload).encode())
            except Exception as exc:
                send_errors[type(exc).__name__] += 1
                continue
            send_ms.append((time.perf_counter() - clock) * 1000)
            outcome = http_outcome(status, answer, batch=False)
            if outcome.ok:
                sends[json.loads(answer)["message_id"]] = sent_at
            else:
                send_errors[outcome.status] += 1
        rows = wait_for_outcomes(
            context.history, marker, len(sends), time.monotonic() + self.max_wait, alive=context.worker.alive
        )
        window = time.time() - began
        opened = _difference(context.history.sessions(), sessions)
        by_id = {row.sqs_message_id: row for row in rows}
        events = context.history.events(marker)
        stage_times = [
            {"start": sent_at, **events.get(message_id, {})} for message_id, sent_at in sends.items()
        ]
        statuses, latencies = [], []
        for message_id, sent_at in sends.items():
            row = by_id.get(message_id)
            finished = row is not None and row.status in FINISHED and row.finished_at is not None
            statuses.append(row.status if finished else "no outcome")
            latencies.append(round((row.finished_at - sent_at) * 1000, 3) if finished else None)
        for status, count in send_errors.items():
            statuses += [f"send: {status}"] * count
            latencies += [None] * count
        result = _result(
            self.name,
            "e2e",
            clients=1,
            statuses=statuses,
            latencies_ms=latencies,
            window=window,
            planned=self.messages,
            deadline_hit=any(status == "no outcome" for status in statuses),
            extra={
                "method": f"{self.messages} at {self.rate:g}/s",
                "send_rate": self.rate,
                "send_ms": [round(value, 3) for value in send_ms],
                "stages": stage_percentiles(stage_times),
                "db_sessions": opened,
                "db_sessions_per_task": opened / len(sends) if opened is not None and sends else None,
            },
        )
        meter.finish(result)
        return result


def plan(
    *, tasks: int, e2e_messages: int, e2e_rate: float, max_seconds: float, feed: int, idle_seconds: float
) -> dict:
    """The baselines (no worker running), then the worker's steps."""
    return {
        # A few seconds each on moto; a shorter deadline keeps a slow machine's run bounded.
        "baselines": [DrainStep(tasks, max_seconds / 4), CeilingStep(tasks, max_seconds / 4)],
        "worker": [
            IdleStep(idle_seconds),
            ThroughputStep(tasks, max_seconds),
            ThroughputStep(tasks, max_seconds, feed=feed, judged=True),
            EndToEndStep(e2e_messages, e2e_rate, max_wait=max(30.0, max_seconds / 2)),
        ],
    }
