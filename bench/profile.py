"""Where Wipsie's CPU goes on one send: py-spy on the gunicorn workers under load.

    .venv/bin/python bench/profile.py [--emulator ministack] [--path send|send-batch]
                                      [--clients 16] [--seconds 20]

Starts the emulator, a fresh bench database and gunicorn exactly as bench/run.py
does, warms them up, then drives the path with a closed loop of N clients while
`py-spy record --gil` samples every gunicorn worker: only the thread holding the GIL,
which is where a Python server spends its CPU (waits on sockets release it). Each
sample is charged to the innermost frame that belongs to a known part (the
database driver and ORM, boto3, JWT, DRF, gunicorn...), and the shares are
scaled to the Wipsie CPU per message measured from /proc in the same window.
The collapsed stacks are kept under bench/results/ for a flame graph.
"""

import argparse
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench import procs  # noqa: E402
from bench.database import choose_database  # noqa: E402
from bench.load import run_closed_loop  # noqa: E402
from bench.run import RESULTS_DIR, server_shape, start_platform, warm_up  # noqa: E402
from bench.steps import api_sender  # noqa: E402

# (part, substrings of a frame's file path). The innermost frame that matches names the part.
PARTS = [
    ("database (psycopg, Django ORM)", ("psycopg", "django/db/")),
    ("boto3 / botocore / urllib3", ("botocore/", "boto3/", "urllib3/", "s3transfer/")),
    ("JWT auth and the user cache", ("rest_framework_simplejwt/", "(jwt/", "sqs_app/authentication")),
    ("metrics (prometheus)", ("prometheus_client/", "django_prometheus/")),
    ("access log", ("gunicorn/glogging", "wipsie_site/access_log")),
    ("logging", ("(logging/", "pythonjsonlogger/")),
    ("Wipsie (schemas, services, views)", ("(sqs_app/", "(tasks_app/")),
    ("DRF (request, parsing, serializers, rendering)", ("(rest_framework/",)),
    ("gunicorn (HTTP, threads)", ("(gunicorn/",)),
    ("Django (handler, middleware, settings)", ("(django/", "(corsheaders/", "(whitenoise/")),
]


def part_of(stack: list[str]) -> str:
    for frame in reversed(stack):  # innermost first
        for part, markers in PARTS:
            if any(marker in frame for marker in markers):
                return part
    return "other (stdlib: json, uuid, threading, ...)"


def parse_collapsed(text: str) -> Counter:
    samples: Counter = Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            samples[part_of(stack.split(";"))] += int(count)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--emulator", default="ministack", choices=procs.EMULATORS)
    parser.add_argument("--path", default="send", choices=["send", "send-batch"])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--workers", type=int)
    args = parser.parse_args()
    shape = server_shape(args)
    processes = procs.Processes(RESULTS_DIR / "logs")
    sizes = {"warmup": 2, "max_seconds": args.seconds}
    try:
        database = choose_database(None, RESULTS_DIR)
        emulator = procs.start_emulator(args.emulator, processes)
        context, _ = start_platform(processes, database, sizes, emulator, shape)
        context.keeper.start()
        warm_up(context, shape)
        gunicorn = context.probes[0]
        workers = gunicorn.pids()[1:]
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        outputs = [RESULTS_DIR / f"profile-{stamp}-{pid}.txt" for pid in workers]
        spies = [
            subprocess.Popen(
                [
                    str(procs.BIN / "py-spy"), "record", "--pid", str(pid), "--format", "raw",
                    "--rate", "250", "--duration", str(int(args.seconds)), "--nonblocking", "--gil",
                    "--output", str(output),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for pid, output in zip(workers, outputs, strict=True)
        ]  # fmt: skip
        time.sleep(1.0)  # py-spy attaches
        before = gunicorn.snapshot()
        load = run_closed_loop(
            make_sender=api_sender(context, batch=args.path == "send-batch"),
            clients=args.clients,
            requests=10**9,
            warmup_per_client=1,
            max_seconds=args.seconds - 2,
            on_outcome=context.keeper.note,
        )
        spent, _ = gunicorn.spent(before, gunicorn.snapshot())
        for spy in spies:
            spy.wait(timeout=args.seconds + 30)
        context.keeper.stop()
        samples: Counter = Counter()
        for output in outputs:
            samples += parse_collapsed(output.read_text())
    finally:
        processes.stop_all()
    total = sum(samples.values()) or 1
    per_message = spent * 1000 / max(1, load.messages_sent)
    print(
        f"\n{args.emulator}, POST /sqs/{args.path}, {args.clients} clients, gunicorn "
        f"{shape['workers']}x{shape['threads']}: {load.messages_sent} messages in {load.wall_seconds:.1f} s, "
        f"Wipsie CPU {per_message:.2f} ms/msg (with py-spy attached; {os.cpu_count()} CPUs)\n"
    )
    print("| part | share | ms CPU/msg |\n|---|---|---|")
    for part, count in samples.most_common():
        print(f"| {part} | {count / total:.0%} | {per_message * count / total:.2f} |")
    print(f"\nCollapsed stacks: {', '.join(str(o.relative_to(procs.ROOT)) for o in outputs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
