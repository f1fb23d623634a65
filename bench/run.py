"""Benchmark Wipsie's send paths and its worker on local SQS emulators (moto and ministack).

    .venv/bin/python bench/run.py [--quick] [--emulators moto,ministack] [--database-url URL]
                                  [--messages N] [--only api|workers] [--threads N]

For each emulator in turn: starts it, a fresh bench database and the production
web server (gunicorn with gunicorn.conf.py, its defaults), drives POST /sqs/send
and /sqs/send-batch and plain boto3 at 1, 16 and 64 concurrent clients, and the
floor (bench/floor.py, the least a Django send can cost, in a gunicorn of its
own) at 16, counts the database statements and SQS calls of one send in
process, then starts a Celery worker and
measures its throughput on trivial tasks and the end-to-end latency from POST
/sqs/send to `succeeded`. Prints latency, throughput, CPU per message and
PASS/MISS against the targets. See bench/README.md.
"""

import argparse
import http.client
import json
import os
import platform
import runpy
import secrets
import signal
import sys
import time
from datetime import datetime
from importlib import metadata
from pathlib import Path

# Run as a script (`python bench/run.py`): import the bench package from the project
# root instead of putting bench/ itself first on sys.path, where its module names
# would shadow installed ones.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench import procs, statements, workers  # noqa: E402
from bench.database import Database, choose_database  # noqa: E402
from bench.history import History  # noqa: E402
from bench.load import percentile, run_closed_loop  # noqa: E402
from bench.report import (  # noqa: E402
    TARGET_CLIENTS,
    error_lines,
    markdown_table,
    rows_from,
    statements_table,
    verdicts,
    workers_table,
    write_json,
)
from bench.steps import Context, QueueKeeper, StepResult, api_sender, boto3_client, plan  # noqa: E402

RESULTS_DIR = procs.ROOT / "bench" / "results"
CONCURRENCIES = [1, 16, 64]
REGION = "us-east-1"
BENCH_USER = "bench"
# Requests per step, at least `per_client` for every client so that 64 clients really are
# 64 concurrent requests. The per-step deadline keeps the run bounded on a slow or busy machine.
FULL = {"single": 1200, "batch": 300, "per_client": 4, "max_seconds": 35.0, "warmup": 2}
QUICK = {"single": 150, "batch": 40, "per_client": 2, "max_seconds": 6.0, "warmup": 1}
# The worker steps: tasks per throughput step, end-to-end messages and their rate (per second),
# the deadline of a worker step, and the most messages waiting or in progress in the steady feed.
# With the production settings a worker does about 2 tasks/s (see README), so 200 tasks take ~100 s.
FULL_WORKER = {
    "tasks": 200,
    "e2e_messages": 50,
    "e2e_rate": 5.0,
    "worker_max_seconds": 120.0,
    "feed": 20,
    "idle_seconds": 5.0,
}
QUICK_WORKER = {
    "tasks": 60,
    "e2e_messages": 20,
    "e2e_rate": 5.0,
    "worker_max_seconds": 45.0,
    "feed": 20,
    "idle_seconds": 3.0,
}
# Messages between queue purges. Measured on moto 5.2.5: a purge costs it ~2.8 ms of CPU and
# each message left in the queue ~0.02 ms per later send, so every 10-20 messages is cheapest
# (about 4 ms of moto CPU per send, against ~6 ms purging every 100 and ~13 ms never, at 600).
# ministack does not slow down as a queue fills; purging it often would only cost its CPU.
PURGE_EVERY = {"moto": 20, "ministack": 1000}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small steps: a smoke run in under 2 minutes")
    parser.add_argument(
        "--database-url",
        help="the server's DATABASE_URL, used as it is (default: postgres://postgres@127.0.0.1:5432/"
        "wipsie_bench, recreated on every run; SQLite under bench/results/ if PostgreSQL is not reachable)",
    )
    parser.add_argument(
        "--messages",
        type=int,
        metavar="N",
        help="messages per step: N single sends, N/10 batch requests (overrides the defaults; "
        "still at least 4 requests per client)",
    )
    parser.add_argument(
        "--emulators",
        default=",".join(procs.EMULATORS),
        help="comma-separated, run in this order (default: moto,ministack)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="GUNICORN_THREADS for the server (default: gunicorn.conf.py's own default)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="WEB_CONCURRENCY for the server (default: gunicorn.conf.py's own default)",
    )
    parser.add_argument(
        "--only",
        choices=["api", "workers"],
        help="run only the API steps, or only the worker steps (default: both)",
    )
    args = parser.parse_args()
    args.emulators = [kind.strip() for kind in args.emulators.split(",") if kind.strip()]
    unknown = set(args.emulators) - set(procs.EMULATORS)
    if unknown or not args.emulators:
        parser.error(f"--emulators: choose from {', '.join(procs.EMULATORS)}")
    return args


def step_sizes(args: argparse.Namespace) -> dict:
    sizes = dict(QUICK if args.quick else FULL) | (QUICK_WORKER if args.quick else FULL_WORKER)
    if args.messages:
        sizes["single"] = max(1, args.messages)
        sizes["batch"] = max(1, args.messages // 10)
    return sizes


# --- The machine ---------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def server_shape(args: argparse.Namespace) -> dict[str, int]:
    """gunicorn's workers and threads as gunicorn.conf.py sets them (its defaults unless overridden)."""
    overrides = {"WEB_CONCURRENCY": args.workers, "GUNICORN_THREADS": args.threads}
    saved = dict(os.environ)
    try:
        os.environ.update({name: str(value) for name, value in overrides.items() if value})
        config = runpy.run_path(str(procs.ROOT / "gunicorn.conf.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {"workers": int(config["workers"]), "threads": int(config["threads"])}


def machine_info(database: Database, shape: dict[str, int], emulators: list[procs.Emulator]) -> dict:
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_average_at_start": round(os.getloadavg()[0], 2),
        "database": database.version,
        "database_note": database.note,
        "emulators": {emulator.kind: emulator.version for emulator in emulators},
        "gunicorn": (
            f"{metadata.version('gunicorn')} gthread, {shape['workers']} workers x {shape['threads']} threads"
        ),
    }


def machine_line(machine: dict) -> str:
    emulators = ", ".join(f"{kind} {version}" for kind, version in machine["emulators"].items())
    return (
        f"Machine: {machine['nproc']} CPUs ({machine['cpu_model']}), Python {machine['python']}, "
        f"{machine['database']}, {emulators}, gunicorn {machine['gunicorn']}, "
        f"load average {machine['load_average_at_start']} at start"
    )


# --- Starting the platform -----------------------------------------------------------


def server_env(
    *, database: Database, sqs_endpoint: str, api_port: int, shape: dict[str, int]
) -> dict[str, str]:
    return {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        # Plain HTTP on loopback: no TLS proxy in front of the server here.
        "SECURE_SSL_REDIRECT": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL_SQS": sqs_endpoint,
        "AWS_ENDPOINT_URL_SNS": sqs_endpoint,
        "LOG_LEVEL": "WARNING",
        # The production default: one JSON access-log line per request, on stdout (the server's
        # log file under bench/results/logs/), so that its cost is in the figures.
        "GUNICORN_ACCESS_LOG": "-",
        "API_THROTTLE_USER": "100000000/minute",  # measure the server, not the rate limit
        "DATABASE_URL": database.url,
        "WEB_CONCURRENCY": str(shape["workers"]),
        "GUNICORN_THREADS": str(shape["threads"]),
        "API_HOST": "127.0.0.1",
        "API_PORT": str(api_port),
        "API_RELOAD": "false",
    }


CREATE_USER = """
import os
from django.contrib.auth import get_user_model
user, _ = get_user_model().objects.get_or_create(username=os.environ["BENCH_USERNAME"])
user.set_password(os.environ["BENCH_PASSWORD"])
user.is_active = True
user.save()
# An API client with a role, as in production: the operators group (sqs_app migration 0005).
from django.contrib.auth.models import Group
user.groups.add(Group.objects.get(name="Wipsie operators"))
"""


def prepare(env: dict[str, str]) -> tuple[dict[str, str], str]:
    """Migrate, create the queues and the bench user. The queues' URLs by logical name, and the password."""
    procs.manage("migrate", "--noinput", env=env)
    setup = procs.manage("sqs_setup", "--json", env=env)
    # The load steps send to "default", the worker steps to "task_processing", the worker to "celery".
    urls = {row["queue"]: row["url"] for row in json.loads(setup)}
    missing = {"default", workers.TASK_QUEUE, workers.CELERY_QUEUE} - set(urls)
    if missing:
        raise procs.StartupError(f"sqs_setup did not report the queues {sorted(missing)}:\n{setup}")
    password = secrets.token_urlsafe(24)
    procs.manage(
        "shell", "-c", CREATE_USER, env={**env, "BENCH_USERNAME": BENCH_USER, "BENCH_PASSWORD": password}
    )
    return urls, password


def start_gunicorn(
    processes: procs.Processes, env: dict[str, str], *, name: str = "gunicorn", app: str = "wipsie_site.wsgi"
) -> int:
    """gunicorn with gunicorn.conf.py on env's API_PORT, once its /health answers; its pid."""
    process = processes.start(name, [str(procs.BIN / "gunicorn"), app, "-c", "gunicorn.conf.py"], env)
    base = f"http://127.0.0.1:{env['API_PORT']}"
    procs.wait_for_http(f"{base}/health", process=process, what=name)
    return process.pid


def start_floor(processes: procs.Processes, env: dict[str, str]) -> tuple[int, int]:
    """The floor server (bench/floor.py): the same gunicorn, configuration and settings, minus Wipsie.
    Its pid and port."""
    port = procs.free_port()
    floor_env = {**env, "DJANGO_SETTINGS_MODULE": "bench.floor_settings", "API_PORT": str(port)}
    app = "django.core.wsgi:get_wsgi_application()"
    return start_gunicorn(processes, floor_env, name="gunicorn-floor", app=app), port


def obtain_token(port: int, password: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"username": BENCH_USER, "password": password})
    conn.request("POST", "/api/token/", body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    if response.status != 200:
        raise procs.StartupError(f"POST /api/token/ answered {response.status}: {payload[:300]!r}")
    return json.loads(payload)["access"]


def warm_up(context: Context, shape: dict[str, int]) -> None:
    """Give every worker its boto3 client, queue URL, database pool and cached user before any step
    (the floor server's too)."""
    clients = shape["workers"] * shape["threads"]
    for server, floor in (("platform", False), ("floor", True)):
        result = run_closed_loop(
            make_sender=api_sender(context, batch=False, floor=floor),
            clients=clients,
            requests=clients * 4,
            warmup_per_client=0,
            max_seconds=30,
            on_outcome=context.keeper.note,
        )
        detail = ", ".join(f"{status} ×{n}" for status, n in result.errors.most_common())
        if result.requests == 0 or result.failed_requests == result.requests:
            raise procs.StartupError(
                f"no {server} warm-up request succeeded: {detail or 'none answered in time'}"
            )
        if result.errors:
            print(f"ERRORS   {server} warm-up: {detail}", flush=True)


def cpu_probes(gunicorn_pid: int, emulator_pid: int, database: Database) -> list[procs.CpuProbe]:
    probes = [
        procs.CpuProbe("wipsie", lambda: procs.gunicorn_pids(gunicorn_pid)),
        procs.CpuProbe("emulator", lambda: [emulator_pid]),
        procs.CpuProbe("client", lambda: [os.getpid()]),
    ]
    if database.engine == "postgresql":
        # Backends name their database in their title: "postgres: user wipsie_bench 127.0.0.1(5433) idle".
        # Found only when PostgreSQL runs on this machine (and we may read /proc of its processes).
        marker = f" {database.name} "

        def is_backend(cmdline: str) -> bool:
            return cmdline.startswith("postgres:") and marker in cmdline

        probes.append(procs.CpuProbe("db", lambda: procs.processes_matching(is_backend)))
    return probes


# --- The run -----------------------------------------------------------------------


def start_platform(
    processes: procs.Processes,
    database: Database,
    sizes: dict,
    emulator: procs.Emulator,
    shape: dict[str, int],
) -> tuple[Context, dict]:
    """The database and queues on the emulator, gunicorn and a token: everything a step needs.
    Also the server's environment, which the worker and the statement count share."""
    began = time.monotonic()
    api_port = procs.free_port()
    env = server_env(database=database, sqs_endpoint=emulator.endpoint, api_port=api_port, shape=shape)
    queue_urls, password = prepare(env)
    queue_url = queue_urls["default"]
    gunicorn_pid = start_gunicorn(processes, env)
    floor_pid, floor_port = start_floor(processes, env)
    token = obtain_token(api_port, password)
    print(
        f"Servers up in {time.monotonic() - began:.0f} s: {emulator.kind} {emulator.endpoint}, "
        f"gunicorn 127.0.0.1:{api_port}, the floor's 127.0.0.1:{floor_port}",
        flush=True,
    )
    endpoint = emulator.endpoint
    context = Context(
        api_host="127.0.0.1",
        api_port=api_port,
        token=token,
        sqs_endpoint=endpoint,
        queue_url=queue_url,
        region=REGION,
        keeper=QueueKeeper(
            boto3_client(endpoint, REGION, pool=2), queue_url, every=PURGE_EVERY[emulator.kind]
        ),
        probes=cpu_probes(gunicorn_pid, emulator.pid, database),
        warmup_per_client=sizes["warmup"],
        max_seconds_per_step=sizes["max_seconds"],
        sqs_client=boto3_client(endpoint, REGION, pool=2),
        queue_urls=queue_urls,
        history=History(database),
        floor_port=floor_port,
        floor_probes=cpu_probes(floor_pid, emulator.pid, database),
    )
    return context, env


def run_on(
    kind: str, args: argparse.Namespace, processes: procs.Processes, sizes: dict, shape: dict[str, int]
) -> tuple[list[StepResult], dict, Database, procs.Emulator, dict]:
    """Every step on one emulator, with a fresh database and server of its own; stops them after."""
    # Fresh per emulator (unless --database-url), so that each starts from empty history tables.
    database = choose_database(args.database_url, RESULTS_DIR)
    if database.note:
        print(f"NOTE     {database.note}", flush=True)
    emulator = procs.start_emulator(kind, processes)
    try:
        context, env = start_platform(processes, database, sizes, emulator, shape)
        context.keeper.start()
        try:
            warm_up(context, shape)
            results = [] if args.only == "workers" else run_steps(context, sizes)
            if args.only != "api":
                results += run_worker_steps(context, sizes, processes, env)
        finally:
            context.keeper.stop()
            context.history.close()
        counted = {} if args.only == "workers" else statements.count_in_process(env, username=BENCH_USER)
        purge_errors = dict(context.keeper.purge_errors)
    finally:
        processes.stop_all()
    for result in results:
        result.emulator = kind
    return results, counted, database, emulator, purge_errors


def run(args: argparse.Namespace, processes: procs.Processes) -> int:
    began = time.monotonic()
    sizes = step_sizes(args)
    shape = server_shape(args)
    results: list[StepResult] = []
    counted: dict[str, dict] = {}
    purge_errors: dict[str, dict] = {}
    emulators: list[procs.Emulator] = []
    database = None
    for kind in args.emulators:
        print(f"\n=== {kind} ===", flush=True)
        found, counted[kind], database, emulator, purge_errors[kind] = run_on(
            kind, args, processes, sizes, shape
        )
        results += found
        emulators.append(emulator)

    machine = machine_info(database, shape, emulators)
    rows = rows_from(results)
    found = verdicts(rows, counted)
    print(f"\n{machine_line(machine)}")
    for kind in args.emulators:
        tables = [table for table in (markdown_table(rows, kind), workers_table(rows, kind)) if table]
        print(f"\n### {kind}\n\n" + "\n\n".join(tables))
        if counted.get(kind):
            print("\n" + statements_table(counted[kind]))
    print()
    for line in error_lines(rows):
        print(line)
    for kind, errors in purge_errors.items():
        if errors:
            print(f"ERRORS   {kind}: queue purges failed: {errors}")
    for verdict in found:
        print(verdict.line())
    config = {
        "quick": args.quick,
        "only": args.only,
        "emulators": args.emulators,
        "server": shape,
        "sizes": sizes,
        "worker": {
            "argv": ["celery", *workers.WORKER_ARGS],
            "env": workers.WORKER_ENV,
            "warm_up_tasks": WORKER_WARM_UP,
            "task_data": workers.TASK_DATA,
        },
        "concurrencies": CONCURRENCIES,
        "purge_every_messages": PURGE_EVERY,
        "queue_purge_errors": purge_errors,
        "database_engine": database.engine,
        "seconds": round(time.monotonic() - began, 1),
    }
    output = RESULTS_DIR / f"bench-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    write_json(output, machine=machine, config=config, rows=rows, found=found, statements=counted)
    print(f"\nRaw results: {output.relative_to(procs.ROOT)} ({time.monotonic() - began:.0f} s in all)")
    return 0  # a MISS is a measurement, not a failure


def run_steps(context: Context, sizes: dict) -> list[StepResult]:
    results = []
    steps = plan(
        concurrencies=CONCURRENCIES,
        single_requests=sizes["single"],
        batch_requests=sizes["batch"],
        min_requests_per_client=sizes["per_client"],
        floor_clients=TARGET_CLIENTS,
    )
    for number, step in enumerate(steps, start=1):
        result = step.run(context)
        load = result.load
        print(
            f"[{number:2}/{len(steps)}] {result.name:<26} {result.clients:>3} clients: "
            f"{load.requests:>5} requests, {load.messages_sent:>6} messages, "
            f"{load.failed_requests} errors, {load.wall_seconds:5.1f} s",
            flush=True,
        )
        results.append(result)
    return results


WORKER_WARM_UP = 10  # tasks the worker must finish before it is timed: every pool process warm


def run_worker_steps(
    context: Context, sizes: dict, processes: procs.Processes, env: dict[str, str]
) -> list[StepResult]:
    """The emulator's baselines while no worker runs, then one worker for the worker steps."""
    steps = workers.plan(
        tasks=sizes["tasks"],
        e2e_messages=sizes["e2e_messages"],
        e2e_rate=sizes["e2e_rate"],
        max_seconds=sizes["worker_max_seconds"],
        feed=sizes["feed"],
        idle_seconds=sizes["idle_seconds"],
    )
    results = [_report_worker_step(step.run(context)) for step in steps["baselines"]]
    worker = workers.Worker(processes, env)
    context.worker = worker
    try:
        seconds = worker.start(context, warm_up=WORKER_WARM_UP)
        print(f"Worker up in {seconds:.0f} s (pid {worker.process.pid}, {WORKER_WARM_UP} warm-up tasks)")
        for step in steps["worker"]:
            results.append(_report_worker_step(step.run(context)))
    finally:
        worker.stop()
    # Counted last, by a worker of its own: the timed one must not take its messages.
    results.append(
        _report_worker_step(
            workers.CountStep(sizes["tasks"], sizes["worker_max_seconds"], processes, env).run(context)
        )
    )
    return results


def _report_worker_step(result: StepResult) -> StepResult:
    load = result.load
    if result.kind == "idle":
        figure = f"{load.wall_seconds:.1f} s"
    elif result.kind == "e2e":
        latencies = sorted(value for value in load.latencies_ms if value is not None)
        p95 = percentile(latencies, 0.95)
        figure = f"P95 {p95 / 1000:5.2f} s" if p95 is not None else "no latency"
    else:
        figure = f"{result.extra.get('rate') or 0:6.1f}/s over {load.wall_seconds:5.1f} s"
    print(
        f"[worker] {result.name:<32} {load.messages_sent:>4} of {load.requests_planned} done, "
        f"{load.failed_requests} errors, {figure}",
        flush=True,
    )
    return result


def stopped_by_sigterm(*_) -> None:
    print("\nSIGTERM; stopping the servers.", file=sys.stderr)
    sys.exit(143)


def main() -> int:
    args = parse_args()
    processes = procs.Processes(RESULTS_DIR / "logs")
    # SIGTERM (e.g. from a CI timeout) unwinds like Ctrl-C, through the `finally` below.
    signal.signal(signal.SIGTERM, stopped_by_sigterm)
    try:
        return run(args, processes)
    except procs.StartupError as exc:
        print(f"\nFAILED to start: {exc}", file=sys.stderr)
        for name, _ in processes.started:
            tail = processes.log_tail(name)
            if tail:
                print(f"\n--- last lines of {processes.log_path(name)} ---\n{tail}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nInterrupted; stopping the servers.", file=sys.stderr)
        return 130
    finally:
        processes.stop_all()


if __name__ == "__main__":
    sys.exit(main())
