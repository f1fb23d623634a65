"""The benchmark's steps: what each one sends, and what it measures.

A run is a list of steps, each an object with a `name` and a
`run(context) -> StepResult`. Here: the load steps (`plan`: the API's send
paths and the direct boto3 baseline). The worker's steps, with the same two
members, are in bench/workers.py.
"""

import json
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count
from typing import Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from . import procs
from .load import (
    HttpJsonClient,
    LoadResult,
    Outcome,
    Sender,
    exception_outcome,
    http_outcome,
    run_closed_loop,
)

BATCH_SIZE = 10  # SQS's maximum entries per SendMessageBatch
QUEUE = "default"  # the logical queue every step sends to


# --- What every step can use --------------------------------------------------------


class QueueKeeper:
    """Keeps the queue near empty while a step runs.

    moto checks every message in a queue on each send, so sends get slower as a
    queue fills (about 110/s empty, 17/s at 2,000 messages). Background threads
    purge the queue each time `every` more messages were accepted; the moto
    server runs with MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR=false so that
    purges are not limited to one a minute. Purging does not change the queue or
    its URL, so the servers' cached queue URLs stay valid and no send fails.

    Several threads, because under heavy load a purge waits a long time for its
    turn in moto (one GIL, one thread per connection) while the queue keeps
    growing; the next purge must not wait for the previous one to come back.
    """

    def __init__(self, client, queue_url: str, every: int, threads: int = 8):
        self.client, self.queue_url, self.every = client, queue_url, every
        self.purges = 0
        self.purge_errors: Counter = Counter()
        self.peak_depth = 0
        self._pending = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._loop, name=f"queue-keeper-{index}", daemon=True)
            for index in range(threads)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def note(self, outcome: Outcome) -> None:
        """Called after every request: counts the messages now sitting in the queue."""
        with self._lock:
            self._pending += outcome.messages_sent
            if self._pending >= self.every:
                self._wake.set()

    def purge_now(self) -> None:
        with self._lock:
            claimed, self._pending = self._pending, 0
        self._purge(claimed)

    def take_peak_depth(self) -> int:
        """About the most messages the queue held since the last call."""
        with self._lock:
            peak, self.peak_depth = max(self.peak_depth, self._pending), 0
        return peak

    def _purge(self, claimed: int) -> None:
        try:
            self.client.purge_queue(QueueUrl=self.queue_url)
            outcome = None
        except (ClientError, BotoCoreError) as exc:
            outcome = type(exc).__name__
        with self._lock:
            if outcome:
                self.purge_errors[outcome] += 1
            else:
                self.purges += 1
            # Messages accepted while the purge waited for its turn in moto count too: under
            # heavy load a purge is slow, and the queue grows past `every` meanwhile.
            self.peak_depth = max(self.peak_depth, claimed + self._pending)

    def _loop(self) -> None:
        while not self._stopping:
            self._wake.wait(timeout=0.5)
            with self._lock:
                claimed = self._pending if self._pending >= self.every else None
                if claimed is None:
                    self._wake.clear()
                else:
                    self._pending = 0  # claimed by this thread: the others wait for the next `every`
            if claimed is not None and not self._stopping:
                self._purge(claimed)


@dataclass
class Context:
    api_host: str
    api_port: int
    token: str
    sqs_endpoint: str
    queue_url: str
    region: str
    keeper: QueueKeeper
    probes: list[procs.CpuProbe]  # "wipsie" (gunicorn), "emulator", "db", "client" (this process)
    warmup_per_client: int
    max_seconds_per_step: float
    # For the worker steps (bench/workers.py).
    sqs_client: object = None  # a boto3 SQS client for setup and the baselines
    queue_urls: dict[str, str] = field(default_factory=dict)  # logical name -> URL
    history: object = None  # bench.history.History
    worker: object = None  # bench.workers.Worker, once started
    # The floor server (bench/floor.py) beside the real one, and its probes ("wipsie" is its gunicorn).
    floor_port: int | None = None
    floor_probes: list[procs.CpuProbe] = field(default_factory=list)


@dataclass
class StepResult:
    name: str
    kind: str  # "api", "floor" or "direct"; "baseline", "worker" or "e2e" (bench/workers.py)
    path: str  # "send" or "send-batch"; the logical queue for the worker steps
    clients: int
    messages_per_request: int
    load: LoadResult
    cpu_seconds: dict[str, float | None] = field(default_factory=dict)  # probe name -> CPU s in the step
    lost_pids: dict[str, list[int]] = field(default_factory=dict)
    purges: int = 0
    peak_queue_depth: int = 0  # an estimate; above a few hundred moto's sends get much slower
    # The whole machine in the step: other processes' CPU makes every figure noisier.
    machine_busy_seconds: float = 0.0
    machine_total_seconds: float = 0.0
    extra: dict = field(default_factory=dict)  # figures specific to a kind of step
    emulator: str = ""  # "moto" or "ministack": set by bench/run.py after the step

    @property
    def others_cpu_share(self) -> float | None:
        """Share of the machine's CPU used by processes no probe covers (other jobs,
        PostgreSQL's background writers), during the step."""
        if not self.machine_total_seconds:
            return None
        ours = sum(seconds for seconds in self.cpu_seconds.values() if seconds)
        return max(0.0, self.machine_busy_seconds - ours) / self.machine_total_seconds


class Step(Protocol):
    name: str

    def run(self, context: Context) -> StepResult: ...


# --- Message bodies ----------------------------------------------------------------

_sequence = count(1)


def api_message() -> dict:
    """What a client posts: a small message without task data to validate."""
    return {"task_type": "user_action", "priority": "medium", "message": f"bench message {next(_sequence)}"}


def standard_body() -> str:
    """What Wipsie puts in SQS for `api_message()` (sqs_app.schemas.build_standard_message), so
    the direct baseline sends bodies of the same size and shape."""
    body = api_message() | {
        "id": str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).isoformat(),
        "source": "api",
        "queue": QUEUE,
        "correlation_id": str(uuid.uuid4()),
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


# --- Senders -----------------------------------------------------------------------


def api_sender(context: Context, *, batch: bool, floor: bool = False) -> Callable[[], Sender]:
    """POST /sqs/send or /sqs/send-batch over one keep-alive connection per thread.

    `floor`: the same body and token to the floor server's POST /sqs/floor (bench/floor.py).
    """
    path = "/sqs/floor" if floor else "/sqs/send-batch" if batch else "/sqs/send"
    port = context.floor_port if floor else context.api_port
    size = BATCH_SIZE if batch else 1

    def make_sender() -> Sender:
        auth = {"Authorization": f"Bearer {context.token}"}
        http = HttpJsonClient(context.api_host, port, auth)

        def send() -> Outcome:
            if batch:
                payload = {"queue_name": QUEUE, "messages": [{"message": api_message()} for _ in range(size)]}
            else:
                payload = {"queue_name": QUEUE, "message": api_message()}
            try:
                status, answer = http.post(path, json.dumps(payload).encode())
            except Exception as exc:
                return exception_outcome(exc, messages=size)
            return http_outcome(status, answer, batch=batch)

        return send

    return make_sender


def boto3_client(endpoint: str, region: str, pool: int):
    """A client configured like Wipsie's own (sqs_app.sqs_client), pool sized to the threads."""
    config = Config(
        region_name=region,
        max_pool_connections=pool,
        connect_timeout=3.0,
        read_timeout=30.0,
        retries={"mode": "standard", "max_attempts": 3},
    )
    return boto3.session.Session().client(
        "sqs",
        config=config,
        endpoint_url=endpoint,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",  # noqa: S106 - moto accepts any credentials
    )


def direct_sender(context: Context, *, batch: bool, clients: int) -> Callable[[], Sender]:
    """Plain boto3 SendMessage / SendMessageBatch: one client shared by all threads, as an app would."""
    client = boto3_client(context.sqs_endpoint, context.region, pool=clients)
    url = context.queue_url

    def send() -> Outcome:
        size = BATCH_SIZE if batch else 1
        try:
            if not batch:
                client.send_message(QueueUrl=url, MessageBody=standard_body())
                return Outcome(ok=True, status="ok", messages_sent=1)
            entries = [{"Id": str(index), "MessageBody": standard_body()} for index in range(size)]
            response = client.send_message_batch(QueueUrl=url, Entries=entries)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "ClientError")
            return Outcome(ok=False, status=code, messages_failed=size)
        except Exception as exc:
            return exception_outcome(exc, messages=size)
        failed = len(response.get("Failed", []))
        return Outcome(
            ok=failed == 0,
            status="ok" if failed == 0 else f"{failed} failed entries",
            messages_sent=len(response.get("Successful", [])),
            messages_failed=failed,
        )

    return lambda: send


# --- The load step -----------------------------------------------------------------


@dataclass(frozen=True)
class LoadStep:
    kind: str  # "api", "floor" (bench/floor.py's server, single sends only) or "direct"
    path: str  # "send" or "send-batch"
    clients: int
    requests: int

    @property
    def batch(self) -> bool:
        return self.path == "send-batch"

    @property
    def name(self) -> str:
        if self.kind == "api":
            return f"API POST /sqs/{self.path}"
        if self.kind == "floor":
            return "floor (bench/floor.py)"
        return "boto3 send_message_batch" if self.batch else "boto3 send_message"

    def run(self, context: Context) -> StepResult:
        probes = context.probes
        if self.kind == "api":
            make_sender = api_sender(context, batch=self.batch)
        elif self.kind == "floor":
            make_sender, probes = api_sender(context, batch=False, floor=True), context.floor_probes
        else:
            make_sender = direct_sender(context, batch=self.batch, clients=self.clients)
        context.keeper.purge_now()  # every step starts on an empty queue
        context.keeper.take_peak_depth()
        purges_before = context.keeper.purges
        cpu = CpuMeter(probes)
        load = run_closed_loop(
            make_sender=make_sender,
            clients=self.clients,
            requests=self.requests,
            warmup_per_client=context.warmup_per_client,
            max_seconds=context.max_seconds_per_step,
            on_start=cpu.start,
            on_outcome=context.keeper.note,
        )
        result = StepResult(
            name=self.name,
            kind=self.kind,
            path=self.path,
            clients=self.clients,
            messages_per_request=BATCH_SIZE if self.batch else 1,
            load=load,
            purges=context.keeper.purges - purges_before,
            peak_queue_depth=context.keeper.take_peak_depth(),
        )
        cpu.finish(result)
        return result


class CpuMeter:
    """CPU spent by each probe's processes, and by the whole machine, between start and finish."""

    def __init__(self, probes: list[procs.CpuProbe]):
        self.probes = probes
        self.snapshots: dict[str, dict[int, float]] = {}
        self.machine: tuple[float, float] | None = None

    def start(self) -> None:
        self.snapshots = {probe.name: probe.snapshot() for probe in self.probes}
        self.machine = procs.machine_cpu_seconds()

    def finish(self, result: StepResult) -> None:
        if self.machine is None:
            return  # the timed part never started
        busy, total = procs.machine_cpu_seconds()
        result.machine_busy_seconds = busy - self.machine[0]
        result.machine_total_seconds = total - self.machine[1]
        for probe in self.probes:
            before = self.snapshots[probe.name]
            spent, lost = procs.CpuProbe.spent(before, probe.snapshot())
            # No process at the start (e.g. PostgreSQL on another machine): nothing measured.
            result.cpu_seconds[probe.name] = spent if before else None
            if lost:
                result.lost_pids[probe.name] = lost


def plan(
    *,
    concurrencies: list[int],
    single_requests: int,
    batch_requests: int,
    min_requests_per_client: int,
    floor_clients: int | None = None,
) -> list[Step]:
    """Each API step right after its direct twin, so that the two see the same machine state;
    at `floor_clients`, the floor's single sends right after the API's."""
    steps: list[Step] = []
    for path, requests in (("send", single_requests), ("send-batch", batch_requests)):
        for clients in concurrencies:
            total = max(requests, min_requests_per_client * clients)
            steps.append(LoadStep("direct", path, clients, total))
            steps.append(LoadStep("api", path, clients, total))
            if path == "send" and clients == floor_clients:
                steps.append(LoadStep("floor", path, clients, total))
    return steps
