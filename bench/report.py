"""Figures from step results: the table, the PASS/MISS lines, the JSON file."""

import json
import math
from dataclasses import dataclass
from pathlib import Path

from .load import percentile
from .steps import StepResult

# The spec's targets (shared/spec/wipsie-spec.md, "Performance Benchmarks").
# And the issue "A single send at well under half of today's CPU", judged on ministack (whose own
# cost per call is small and flat) and reported beside it on moto.
TARGET_P95_MS = 100.0
TARGET_CLIENTS = 16  # the concurrency at which the single send's P95 and CPU are judged
TARGET_SEND_CPU_MS = 2.5  # Wipsie CPU per single send
# The floor that target was set against: the issue measured its floor (bench/floor.py's kind of
# view) at 2.2 ms per send on ministack. CPU ms change with the machine's speed from hour to hour;
# the ratio of the send to the floor served beside it in the same run does not.
ISSUE_FLOOR_MS = 2.2
TARGET_OVER_FLOOR = TARGET_SEND_CPU_MS / ISSUE_FLOOR_MS
TARGET_ADDED_MS = 3.0  # API P50 minus direct boto3 P50 at 1 client
TARGET_BATCH_CPU_MS = 1.0  # Wipsie CPU per message on the batch path: >= 2,000 msgs/s on 2 cores
TARGET_STATEMENTS = 2  # database round trips per send on the fresh-id path
TARGET_CORES = 2  # capacities are for a 2-core web tier
JUDGED_ON = "ministack"
DEEP_QUEUE = 200  # messages; moto's send costs ~0.02 ms more per message already in the queue
# One worker, --concurrency 2, trivial processing tasks, by emulator: moto spends several ms of
# CPU per call on the same two cores, ministack a fraction of one.
TARGET_TASKS_PER_S = {"moto": 60.0, "ministack": 150.0}
TARGET_WORKER_CPU_MS = 6.0  # worker CPU (main process + pool) per task
TARGET_SQS_CALLS = 2.0  # per task on the success path (counted)
TARGET_SQL_STATEMENTS = 4.0  # per task on the success path (counted)
TARGET_E2E_P95_S = 1.0  # POST /sqs/send to `succeeded` in the history
SERVER_KINDS = ("api", "floor")  # steps that load a web server: Wipsie's, or the floor's (bench/floor.py)
WORKER_KINDS = ("baseline", "worker", "e2e", "idle", "counted")  # bench/workers.py; not in the API table
NOISY_SHARE = 0.10  # other processes' share of the machine's CPU above which a step is flagged


@dataclass
class Row:
    """The figures of one step, derived from its raw result."""

    result: StepResult
    p50: float | None
    p95: float | None
    p99: float | None
    msgs_per_s: float
    ratio: float | None  # API msgs/s / direct msgs/s at the same path and concurrency
    cpu_ms_per_msg: dict[str, float | None]  # probe name -> ms of CPU per message sent
    added_ms: float | None = None  # API P50 minus direct boto3 P50, same emulator, path and clients

    @property
    def wipsie_capacity(self) -> float | None:
        """Messages per second TARGET_CORES cores could serve at this CPU cost per message."""
        cost = self.cpu_ms_per_msg.get("wipsie")
        if self.result.kind not in SERVER_KINDS or not cost:  # the web tier idles in the other steps
            return None
        return TARGET_CORES * 1000.0 / cost


def _key(row: Row) -> tuple[str, str, int]:
    return row.result.emulator, row.result.path, row.result.clients


def rows_from(results: list[StepResult]) -> list[Row]:
    rows = [_row(result) for result in results]
    direct = {_key(r): r for r in rows if r.result.kind == "direct"}
    for row in rows:
        baseline = direct.get(_key(row))
        if row.result.kind in SERVER_KINDS and baseline and baseline.msgs_per_s:
            row.ratio = row.msgs_per_s / baseline.msgs_per_s
            if row.p50 is not None and baseline.p50 is not None:
                row.added_ms = row.p50 - baseline.p50
    return rows


def _row(result: StepResult) -> Row:
    load = result.load
    latencies = sorted(value for value in load.latencies_ms if value is not None)
    sent = load.messages_sent
    cpu = {
        name: (seconds * 1000.0 / sent if seconds is not None and sent else None)
        for name, seconds in result.cpu_seconds.items()
    }
    return Row(
        result=result,
        p50=percentile(latencies, 0.50),
        p95=percentile(latencies, 0.95),
        p99=percentile(latencies, 0.99),
        msgs_per_s=sent / load.wall_seconds if load.wall_seconds else 0.0,
        ratio=None,
        cpu_ms_per_msg=cpu,
    )


# --- Text -------------------------------------------------------------------------


def _num(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


TABLE_HEADER = (
    "| path | clients | requests | messages | errors | P50 ms | P95 ms | P99 ms | msgs/s "
    "| API/direct | added P50 ms | Wipsie CPU ms/msg | Wipsie capacity msgs/s (2 cores) | DB CPU ms/msg "
    "| emulator CPU ms/msg | load gen CPU ms/msg | others' CPU % |"
)


def markdown_table(rows: list[Row], emulator: str) -> str:
    """The API table (load steps) of one emulator; empty when there are none."""
    rows = [row for row in rows if row.result.kind not in WORKER_KINDS and row.result.emulator == emulator]
    if not rows:
        return ""
    lines = [TABLE_HEADER, "|" + "---|" * TABLE_HEADER.count(" | ") + "---|"]
    for row in rows:
        r, load = row.result, row.result.load
        serves = r.kind != "direct"  # Wipsie's own figures mean nothing while it is idle
        errors = load.failed_requests + sum(load.warmup_errors.values())
        lines.append(
            f"| {r.name} | {r.clients} | {load.requests:,}{' (deadline)' if load.deadline_hit else ''} "
            f"| {load.messages_sent:,} | {errors:,} "
            f"| {_num(row.p50)} | {_num(row.p95)} | {_num(row.p99)} | {_num(row.msgs_per_s, 0)} "
            f"| {_num(row.ratio * 100, 0) + ' %' if row.ratio else '—'} "
            f"| {_num(row.added_ms)} "
            f"| {_num(row.cpu_ms_per_msg.get('wipsie') if serves else None, 2)} "
            f"| {_num(row.wipsie_capacity, 0)} "
            f"| {_num(row.cpu_ms_per_msg.get('db') if serves else None, 2)} "
            f"| {_num(row.cpu_ms_per_msg.get('emulator'), 2)} "
            f"| {_num(row.cpu_ms_per_msg.get('client'), 2)} "
            f"| {_num(r.others_cpu_share * 100 if r.others_cpu_share is not None else None, 0)} |"
        )
    return "\n".join(lines)


WORKERS_HEADER = (
    "| Workers | method | tasks | errors | tasks/s | P50 s | P95 s | max s | worker CPU ms/task "
    "| worker capacity tasks/s (2 cores) | web CPU ms/task | DB CPU ms/task | emulator CPU ms/task "
    "| load gen CPU ms/task | others' CPU % |"
)


def worker_cpu(per_probe: dict[str, float | None]) -> float | None:
    """The worker's CPU: its main process (the consumers) plus its pool processes (the tasks)."""
    parts = [per_probe.get(name) for name in ("worker_consumer", "worker_pool")]
    return None if all(part is None for part in parts) else sum(part or 0.0 for part in parts)


def _seconds(value_ms: float | None) -> str:
    return _num(value_ms / 1000 if value_ms is not None else None, 2)


def workers_table(rows: list[Row], emulator: str) -> str:
    """The worker steps: the emulator's baselines, the worker's throughput, the end-to-end latency.
    CPU is per task done (for the baselines: per message taken off the queue)."""
    rows = [
        row
        for row in rows
        if row.result.kind in WORKER_KINDS
        and row.result.kind not in ("idle", "counted")
        and row.result.emulator == emulator
    ]
    if not rows:
        return ""
    lines = [WORKERS_HEADER, "|" + "---|" * WORKERS_HEADER.count(" | ") + "---|"]
    for row in rows:
        r, load = row.result, row.result.load
        cpu = row.cpu_ms_per_msg
        task_cpu = worker_cpu(cpu)
        latencies = sorted(value for value in load.latencies_ms if value is not None)
        timed = r.kind == "e2e"
        lines.append(
            f"| {r.name} | {r.extra.get('method', '')} "
            f"| {load.messages_sent:,}{' (deadline)' if load.deadline_hit else ''} "
            f"| {load.failed_requests:,} "
            f"| {_num(None if timed else r.extra.get('rate'), 1)} "
            f"| {_seconds(row.p50) if timed else '—'} | {_seconds(row.p95) if timed else '—'} "
            f"| {_seconds(latencies[-1] if latencies else None) if timed else '—'} "
            f"| {_num(task_cpu, 2)} | {_num(TARGET_CORES * 1000 / task_cpu if task_cpu else None, 0)} "
            f"| {_num(cpu.get('wipsie') if timed else None, 2)} "
            f"| {_num(cpu.get('db') if r.kind != 'baseline' else None, 2)} "
            f"| {_num(cpu.get('emulator'), 2)} | {_num(cpu.get('client'), 2)} "
            f"| {_num(r.others_cpu_share * 100 if r.others_cpu_share is not None else None, 0)} |"
        )
    return "\n".join(lines)


def error_lines(rows: list[Row]) -> list[str]:
    """Every failed request by status, and anything that makes a figure less exact."""
    lines = []
    for row in rows:
        r, load = row.result, row.result.load
        where = f"{r.emulator}: {r.name} @ {r.clients}"
        if load.errors and r.kind in WORKER_KINDS:
            detail = ", ".join(f"{status} ×{n}" for status, n in load.errors.most_common())
            lines.append(f"ERRORS   {r.name}: {detail}")
        elif load.errors:
            detail = ", ".join(f"{status} ×{n}" for status, n in load.errors.most_common())
            lines.append(f"ERRORS   {where}: {detail} ({load.messages_failed} messages not sent)")
        if load.warmup_errors:
            detail = ", ".join(f"{status} ×{n}" for status, n in load.warmup_errors.most_common())
            lines.append(f"ERRORS   {where} (warm-up): {detail}")
        if load.deadline_hit and r.kind in WORKER_KINDS:
            lines.append(
                f"NOTE     {r.name}: {load.messages_sent} of {load.requests_planned} tasks done by the "
                "step's deadline"
            )
        elif load.deadline_hit:
            lines.append(
                f"NOTE     {where}: step deadline reached after {load.requests} of "
                f"{load.requests_planned} requests"
            )
        if r.peak_queue_depth > DEEP_QUEUE and r.emulator == "moto":
            lines.append(
                f"NOTE     {where}: the queue reached about {r.peak_queue_depth} messages between purges; "
                "moto scans them on every send, so its CPU per message and the latency are inflated"
            )
        if r.kind == "idle":
            rates = r.extra.get("cpu_ms_per_s", {})
            lines.append(
                f"NOTE     {r.emulator}: {r.name} ({r.extra['method']}): worker {_num(worker_cpu(rates))} ms "
                f"CPU/s, emulator {_num(rates.get('emulator'))} ms/s, DB {_num(rates.get('db'))} ms/s: "
                "polling its queues; "
                "this is in the CPU per task above too, a large share of it at a few tasks/s"
            )
        if r.kind == "worker":
            lines.append(
                f"NOTE     {r.name}: tasks started at {_num(r.extra.get('task_start_rate'))}/s and "
                f"succeeded at {_num(r.extra.get('rate'))}/s"
            )
        if r.kind == "counted":
            calls = r.extra.get("sqs_calls_per_task_by_action") or {}
            kinds = r.extra.get("sql_statements_per_task_by_kind") or {}
            lines.append(
                f"NOTE     {r.name} ({r.extra.get('method')}), per task: "
                f"{_num(r.extra.get('sqs_calls_per_task'), 2)} SQS calls "
                f"({', '.join(f'{k} {_num(v, 2)}' for k, v in calls.items()) or 'none'}); "
                f"{_num(r.extra.get('sql_statements_per_task'), 2)} SQL statements "
                f"({', '.join(f'{k} {_num(v, 2)}' for k, v in kinds.items()) or 'none'}); "
                f"{_num(r.extra.get('db_sessions_per_task'), 3)} new DB connections"
            )
        if r.kind in ("worker", "e2e"):
            cpu = row.cpu_ms_per_msg
            moto = cpu.get("emulator")
            sessions = r.extra.get("db_sessions_per_task")
            lines.append(
                f"NOTE     {r.name}, per task: worker CPU {_num(cpu.get('worker_consumer'), 1)} ms in the "
                f"consumer + {_num(cpu.get('worker_pool'), 1)} ms in the pool; "
                f"{r.emulator} {_num(moto, 1)} ms "
                f"(one GIL: at most {_num(1000 / moto if moto else None, 0)} tasks/s); "
                f"{_num(sessions, 1)} new DB connections"
                + (
                    " (their backends' CPU is under others' CPU %, not DB CPU)"
                    if sessions is not None and sessions >= 0.5
                    else ""
                )
            )
        if r.kind == "e2e" and r.extra.get("stages"):
            stages = ", ".join(
                f"{label} {_seconds(span['p50_ms'])} / {_seconds(span['p95_ms'])}"
                for label, span in r.extra["stages"].items()
            )
            lines.append(f"NOTE     {r.name}, P50 / P95 s per stage: {stages}")
        for probe, pids in r.lost_pids.items():
            lines.append(f"NOTE     {where}: {probe} processes {pids} exited mid-step; CPU undercounted")
    noisy = [row for row in rows if (row.result.others_cpu_share or 0) > NOISY_SHARE]
    if noisy:
        worst = max(row.result.others_cpu_share for row in noisy)
        lines.append(
            f"NOTE     other processes used more than {NOISY_SHARE:.0%} of the machine's CPU in "
            f'{len(noisy)} of {len(rows)} steps (up to {worst:.0%}, column "others\' CPU %"): '
            "latency and msgs/s are noisier than on a quiet machine; CPU per message is not affected much"
        )
    return lines


@dataclass(frozen=True)
class Verdict:
    passed: bool
    text: str

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'MISS'}  {self.text}"


def _clients(count: int) -> str:
    return f"{count} client" if count == 1 else f"{count} clients"


def verdicts(rows: list[Row], statements: dict[str, dict] | None = None) -> list[Verdict]:
    """The targets, per emulator: judged on ministack, and the same figures on moto beside them."""
    statements = statements or {}
    emulators = sorted({row.result.emulator for row in rows}, key=lambda kind: kind != JUDGED_ON)
    found = []
    for emulator in emulators:
        found += _api_verdicts(rows, emulator, statements.get(emulator) or {})
    return found + _worker_verdicts(rows)


def _api_verdicts(rows: list[Row], emulator: str, counted: dict) -> list[Verdict]:
    api = {
        (row.result.path, row.result.clients): row
        for row in rows
        if row.result.kind == "api" and row.result.emulator == emulator
    }
    label = emulator if emulator == JUDGED_ON else f"{emulator}, for reference"
    found = []
    single = api.get(("send", TARGET_CLIENTS))
    if single is not None:
        found.append(
            Verdict(
                single.p95 is not None and single.p95 < TARGET_P95_MS,
                f"[{label}] POST /sqs/send P95 at {TARGET_CLIENTS} clients: {_num(single.p95)} ms "
                f"(target < {TARGET_P95_MS:.0f} ms)",
            )
        )
        cost = single.cpu_ms_per_msg.get("wipsie")
        found.append(
            Verdict(
                cost is not None and cost <= TARGET_SEND_CPU_MS,
                f"[{label}] POST /sqs/send Wipsie CPU at {TARGET_CLIENTS} clients: {_num(cost, 2)} ms/msg "
                f"(target <= {TARGET_SEND_CPU_MS} ms/msg)",
            )
        )
        found += _floor_verdicts(rows, emulator, label, cost)
    one = api.get(("send", 1))
    if one is not None:
        found.append(
            Verdict(
                one.added_ms is not None and one.added_ms <= TARGET_ADDED_MS,
                f"[{label}] POST /sqs/send added latency at 1 client: {_num(one.added_ms)} ms over direct "
                f"boto3's P50 (target <= {TARGET_ADDED_MS:.0f} ms)",
            )
        )
    for (path, clients), row in sorted(api.items()):
        if path != "send-batch":
            continue
        cost = row.cpu_ms_per_msg.get("wipsie")
        capacity = row.wipsie_capacity
        found.append(
            Verdict(
                cost is not None and cost <= TARGET_BATCH_CPU_MS,
                f"[{label}] POST /sqs/send-batch Wipsie CPU at {_clients(clients)}: {_num(cost, 3)} ms/msg "
                f"-> {_num(math.floor(capacity) if capacity else None, 0)} msgs/s on {TARGET_CORES} cores "
                f"(target <= {TARGET_BATCH_CPU_MS} ms/msg)",
            )
        )
    fresh = counted.get("send (fresh id)")
    if fresh is not None:
        trips = fresh["round_trips_per_message"]
        found.append(
            Verdict(
                trips <= TARGET_STATEMENTS,
                f"[{label}] database round trips per send (fresh id): {_num(trips, 2)} "
                f"(target <= {TARGET_STATEMENTS})",
            )
        )
    return found


def _floor_verdicts(rows: list[Row], emulator: str, label: str, cost: float | None) -> list[Verdict]:
    """The single send's CPU over the floor's, both served in the same run at TARGET_CLIENTS."""
    floor = next(
        (
            row
            for row in rows
            if row.result.kind == "floor"
            and row.result.emulator == emulator
            and row.result.clients == TARGET_CLIENTS
        ),
        None,
    )
    floor_cost = floor.cpu_ms_per_msg.get("wipsie") if floor else None
    if not floor_cost or cost is None:
        return []
    over = cost / floor_cost
    return [
        Verdict(
            over <= TARGET_OVER_FLOOR,
            f"[{label}] POST /sqs/send over the floor (bench/floor.py) in the same run, at {TARGET_CLIENTS} "
            f"clients: {over:.2f}x ({_num(cost, 2)} / {_num(floor_cost, 2)} ms/msg) (target <= "
            f"{TARGET_OVER_FLOOR:.2f}x: {TARGET_SEND_CPU_MS} ms over the floor's {ISSUE_FLOOR_MS} ms "
            f"when the target was set)",
        )
    ]


STATEMENTS_HEADER = (
    "| per message | requests | SQL round trips | transactions | statements in all "
    "| SQS calls | SQS calls in all |\n"
    "|---|---|---|---|---|---|---|"
)


def statements_table(counted: dict[str, dict]) -> str:
    """bench/statements.py's figures: what one send asks of the database, through the whole stack."""
    lines = [STATEMENTS_HEADER]
    for path, figures in counted.items():
        kinds = ", ".join(f"{kind} {count}" for kind, count in figures["statement_kinds"].items())
        calls = ", ".join(f"{name} {count}" for name, count in figures.get("sqs_call_kinds", {}).items())
        sqs_per_message = figures.get("sqs_calls_per_message")
        lines.append(
            f"| {path} | {figures['requests']} | {_num(figures['round_trips_per_message'], 2)} "
            f"| {_num(figures['transactions_per_message'], 2)} | {kinds or '—'} "
            f"| {_num(sqs_per_message, 2)} | {calls or '—'} |"
        )
    return "\n".join(lines)


def _worker_verdicts(rows: list[Row]) -> list[Verdict]:
    found = []
    for row in rows:
        r = row.result
        baseline = next(
            (
                b
                for b in rows
                if b.result.emulator == r.emulator and b.result.name.startswith("boto3 receive")
            ),
            None,
        )
        if r.kind == "worker" and r.extra.get("judged"):
            rate = r.extra.get("rate")
            emulator = r.emulator
            target = TARGET_TASKS_PER_S.get(emulator, TARGET_TASKS_PER_S["moto"])
            context = ""
            if baseline is not None and baseline.result.extra.get("rate"):
                context = (
                    f"; {emulator}'s own receive+delete: {_num(baseline.result.extra['rate'], 0)} msgs/s"
                )
            found.append(
                Verdict(
                    rate is not None and rate >= target and not r.load.failed_requests,
                    f"Worker throughput on {emulator} ({r.extra['method']}): {_num(rate)} tasks/s{context} "
                    f"(target >= {target:.0f} tasks/s)",
                )
            )
            cpu = worker_cpu(row.cpu_ms_per_msg)
            found.append(
                Verdict(
                    cpu is not None and cpu <= TARGET_WORKER_CPU_MS,
                    f"Worker CPU on {emulator}: {_num(cpu, 2)} ms/task, main process and pool "
                    f"(target <= {TARGET_WORKER_CPU_MS:.0f} ms)",
                )
            )
        elif r.kind == "counted" and r.extra.get("sqs_calls_per_task") is not None:
            calls, statements = r.extra["sqs_calls_per_task"], r.extra.get("sql_statements_per_task")
            sessions = r.extra.get("db_sessions_per_task")
            found.append(
                Verdict(calls <= TARGET_SQS_CALLS, f"SQS calls per task: {_num(calls, 2)} (target <= 2)")
            )
            found.append(
                Verdict(
                    statements is not None and statements <= TARGET_SQL_STATEMENTS,
                    f"SQL statements per task: {_num(statements, 2)} "
                    f"({_num(r.extra.get('sql_round_trips_per_task'), 2)} round trips with BEGIN and COMMIT) "
                    "(target <= 4)",
                )
            )
            found.append(
                Verdict(
                    sessions is not None and sessions < 0.05,
                    f"New database connections per task: {_num(sessions, 3)} (target 0)",
                )
            )
        elif r.kind == "e2e":
            p95 = row.p95 / 1000 if row.p95 is not None else None
            failed = r.load.failed_requests
            found.append(
                Verdict(
                    p95 is not None and p95 < TARGET_E2E_P95_S and not failed,
                    f"[{r.emulator}] End to end, POST /sqs/send to succeeded ({r.extra['method']}): P95 "
                    f"{_num(p95, 2)} s, P50 {_seconds(row.p50)} s"
                    f"{f', {failed} without success' if failed else ''} "
                    f"(target P95 < {TARGET_E2E_P95_S:.0f} s)",
                )
            )
    return found


# --- JSON -------------------------------------------------------------------------


def write_json(
    path: Path,
    *,
    machine: dict,
    config: dict,
    rows: list[Row],
    found: list[Verdict],
    statements: dict | None = None,
) -> None:
    document = {
        "machine": machine,
        "config": config,
        "statements_per_send": statements or {},
        "steps": [_row_json(row) for row in rows],
        "targets": [{"passed": v.passed, "text": v.text} for v in found],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1))


def _rounded(value: float | None) -> float | None:
    """CPU times are whole clock ticks; drop the float noise of their differences."""
    return None if value is None else round(value, 3)


def _row_json(row: Row) -> dict:
    r, load = row.result, row.result.load
    return {
        "name": r.name,
        "emulator": r.emulator,
        "kind": r.kind,
        "path": r.path,
        "clients": r.clients,
        "messages_per_request": r.messages_per_request,
        "requests": load.requests,
        "requests_planned": load.requests_planned,
        "deadline_hit": load.deadline_hit,
        "messages_sent": load.messages_sent,
        "messages_failed": load.messages_failed,
        "errors": dict(load.errors),
        "warmup_errors": dict(load.warmup_errors),
        "wall_seconds": load.wall_seconds,
        "p50_ms": row.p50,
        "p95_ms": row.p95,
        "p99_ms": row.p99,
        "msgs_per_s": row.msgs_per_s,
        "api_to_direct": row.ratio,
        "added_p50_ms": row.added_ms,
        "cpu_seconds": {name: _rounded(value) for name, value in r.cpu_seconds.items()},
        "cpu_ms_per_msg": row.cpu_ms_per_msg,
        "wipsie_capacity_msgs_per_s": row.wipsie_capacity,
        "lost_pids": r.lost_pids,
        "queue_purges": r.purges,
        "peak_queue_depth": r.peak_queue_depth,
        "machine_busy_seconds": _rounded(r.machine_busy_seconds),
        "machine_total_seconds": _rounded(r.machine_total_seconds),
        "others_cpu_share": r.others_cpu_share,
        **({"worker_step": r.extra} if r.kind in WORKER_KINDS else {}),
        # Raw, one entry per timed request, in completion order (None: no answer).
        "latencies_ms": load.latencies_ms,
        "statuses": load.statuses,
    }
