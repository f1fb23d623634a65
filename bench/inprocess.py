"""CPU of one request through Django's WSGI handler, in one thread, with no server around it.

    .venv/bin/python bench/inprocess.py [--emulator ministack] [--path send|send-batch|floor]
                                        [--requests 2000] [--profile] [--valgrind]
                                        [--without PART,PART]

Starts the emulator and a fresh bench database as bench/run.py does, then, in a
child process with the server's environment, calls `wipsie_site.wsgi.application`
directly with a prepared WSGI environ, one request after the other, and divides
`time.process_time()` by the number of messages. No gunicorn, no load generator,
no other thread: what is left is Django, DRF, Wipsie, psycopg and boto3, and
the figure moves little with the machine's load (CPU time, not wall time). It
is how each change to the send path was judged before the full bench
(bench/run.py) confirmed it under gunicorn. `--profile` adds cProfile's top
functions (CPU time; PROFILE_SORT=cumulative and PROFILE_LINES=N to change
the listing), and INPROCESS_PARTS=1 the CPU of the send path's pieces on their
own (the body's validation, boto3's SendMessage, the service with its history
write), so the figure can be split. `--valgrind` runs the child under
valgrind's callgrind and prints the instructions it ran: run it with two
--requests counts and divide the difference by the difference of the counts
for instructions per request, a figure no other load on the machine moves.
`--path floor` measures bench/floor.py instead, the least a Django send can
cost (a plain view, a stateless JWT, one SendMessage, one ORM INSERT): the
send's figure divided by the floor's, from the same run, is Wipsie's overhead
whatever the machine's speed that hour. `--without throttle,browser-middleware,...`
takes named parts out of the request path (bench/ablation.py lists them): with
--valgrind, the difference is what each part costs a send.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench import ablation, procs  # noqa: E402
from bench.database import choose_database  # noqa: E402
from bench.run import BENCH_USER, RESULTS_DIR, prepare, server_env  # noqa: E402

WARMUP = 50


def measure(username: str, path: str, requests: int, profile: bool) -> dict:
    """Runs in the child, with the server's environment."""
    import cProfile
    import io
    import pstats
    import time

    # The floor: Wipsie's settings without middleware, with the floor's URLs. --without:
    # Wipsie's, with the parts named in the environment taken out.
    if path == "floor":
        settings_module = "bench.floor_settings"
    elif os.environ.get(ablation.ENV_VAR):
        settings_module = "bench.ablation_settings"
    else:
        settings_module = "wipsie_site.settings"
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.wsgi import get_wsgi_application
    from rest_framework_simplejwt.tokens import AccessToken

    from wipsie_site.db_pool import check_idle_in_background

    application = get_wsgi_application()
    check_idle_in_background()  # as each gunicorn worker does before its first request

    token = str(AccessToken.for_user(get_user_model().objects.get(username=username)))
    message = {"task_type": "user_action", "priority": "medium", "message": "in-process"}
    if path in ("send", "floor"):
        body = json.dumps({"queue_name": "default", "message": message}).encode()
        per_request = 1
    else:
        body = json.dumps({"queue_name": "default", "messages": [{"message": message}] * 10}).encode()
        per_request = 10

    def call() -> None:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": f"/sqs/{path}",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_AUTHORIZATION": f"Bearer {token}",
            "HTTP_ACCEPT": "application/json",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.version": (1, 0),
        }
        statuses = []
        chunks = application(environ, lambda status, headers, exc_info=None: statuses.append(status))
        b"".join(chunks)
        if hasattr(chunks, "close"):
            chunks.close()
        if not statuses[0].startswith("200"):
            raise RuntimeError(f"/sqs/{path} answered {statuses[0]}")

    for _ in range(WARMUP):
        call()
    wanted = os.environ.get("INPROCESS_PARTS") and path != "floor"
    parts = _parts(path, message, username, requests) if wanted else {}
    profiler = cProfile.Profile(time.process_time) if profile else None
    began_cpu, began_wall = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    for _ in range(requests):
        call()
    if profiler:
        profiler.disable()
    cpu, wall = time.process_time() - began_cpu, time.perf_counter() - began_wall
    from django.conf import settings
    from rest_framework.settings import api_settings

    # What the requests went through, so that a --without run shows it took effect.
    request_path = {"middleware": len(settings.MIDDLEWARE)}
    if path != "floor":  # the floor's view is plain Django: no DRF throttles or renderers
        request_path["throttles"] = len(api_settings.DEFAULT_THROTTLE_CLASSES)
        request_path["renderers"] = len(api_settings.DEFAULT_RENDERER_CLASSES)
    result = {
        "path": path,
        "request_path": request_path,
        "pool_check": _pool_check(),
        "requests": requests,
        "cpu_ms_per_message": 1000 * cpu / (requests * per_request),
        "wall_ms_per_request": 1000 * wall / requests,
        "parts": parts,
    }
    if profiler:
        out = io.StringIO()
        sort, lines = os.environ.get("PROFILE_SORT", "tottime"), int(os.environ.get("PROFILE_LINES", "40"))
        pstats.Stats(profiler, stream=out).sort_stats(sort).print_stats(lines)
        result["profile"] = out.getvalue()
    return result


def _pool_check() -> str:
    """How the database pool's connections are checked: in the background, as the server does."""
    from django.db import connection

    if getattr(connection, "pool", None) is None:
        return "no database pool"
    if connection.settings_dict["CONN_HEALTH_CHECKS"]:
        return "pool checked at each checkout"
    return "pool checked in the background"


def _parts(path: str, message: dict, username: str, requests: int) -> dict[str, float]:
    """CPU ms per call of the send path's pieces on their own, to split the request's figure."""
    import time

    from django.contrib.auth import get_user_model
    from django.db import close_old_connections

    from sqs_app import services, sqs_client
    from sqs_app.api.serializers import SendRequestSerializer
    from sqs_app.schemas import validated

    user = get_user_model().objects.get(username=username)
    request_data = {"queue_name": "default", "message": message}
    body = json.dumps({"id": "0" * 36, **message})

    pieces = {
        "the body's validation (schemas.validated)": lambda: validated(SendRequestSerializer, request_data),
        "boto3 send_message (sqs_client)": lambda: sqs_client.send_message(queue="default", body=body),
        "services.message_send (boto3 + history)": lambda: services.message_send(
            queue="default", message=dict(message), sent_by=user
        ),
    }
    figures = {}
    for name, piece in pieces.items():
        for _ in range(WARMUP):
            piece()
        began = time.process_time()
        for _ in range(requests):
            piece()
        figures[name] = 1000 * (time.process_time() - began) / requests
        close_old_connections()
    return figures


def _parts_to_remove(text: str) -> list[str]:
    try:
        return ablation.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emulator", default="ministack", choices=procs.EMULATORS)
    parser.add_argument("--path", default="send", choices=["send", "send-batch", "floor"])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--database-url")
    parser.add_argument(
        "--valgrind",
        action="store_true",
        help="run the child under callgrind and print the instructions it ran (slow: about 25x)",
    )
    parser.add_argument(
        "--without",
        type=_parts_to_remove,
        default=[],
        help="comma-separated parts taken out of the request path: "
        + "; ".join(f"{name}: {what}" for name, what in ablation.PARTS.items()),
    )
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.without and args.path == "floor":
        parser.error("--without takes parts out of Wipsie's send; the floor has none of them")
    if args.child:
        username, path, requests, profile = args.child
        print(json.dumps(measure(username, path, int(requests), profile == "1")))
        return 0

    processes = procs.Processes(RESULTS_DIR / "logs")
    try:
        database = choose_database(args.database_url, RESULTS_DIR)
        emulator = procs.start_emulator(args.emulator, processes)
        env = server_env(
            database=database,
            sqs_endpoint=emulator.endpoint,
            api_port=procs.free_port(),
            shape={"workers": 1, "threads": 1},
        )
        env["ALLOWED_HOSTS"] += ",127.0.0.1"
        env[ablation.ENV_VAR] = ",".join(args.without)
        prepare(env)
        # --valgrind: the child under callgrind, which counts instructions: the same count
        # whatever else the machine is doing, where CPU seconds here vary by 20 %.
        wrapper = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"] if args.valgrind else []
        child = subprocess.run(
            [
                *wrapper,
                str(procs.BIN / "python"),
                "bench/inprocess.py",
                "--child",
                BENCH_USER,
                args.path,
                str(args.requests),
                "1" if args.profile else "0",
            ],
            cwd=procs.ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        processes.stop_all()
    if child.returncode != 0:
        print(child.stdout[-3000:], child.stderr[-3000:], sep="\n")
        return 2
    if args.valgrind:
        collected = [line for line in child.stderr.splitlines() if "Collected :" in line]
        print(f"instructions: {collected[-1].split(':')[-1].strip()}")
    result = json.loads(child.stdout.splitlines()[-1])
    print(result.pop("profile", ""))
    request_path = [f"{n} {what}" for what, n in result.pop("request_path").items()]
    print(f"  request path: {', '.join(request_path)}, {result.pop('pool_check')}")
    for name, ms in result.pop("parts").items():
        print(f"  {ms:7.3f} ms CPU per call  {name}")
    what = "the floor (bench/floor.py)" if args.path == "floor" else f"POST /sqs/{args.path}"
    if args.without:
        what += f" without {', '.join(args.without)}"
    print(
        f"{args.emulator}, {what}, {result['requests']} requests in one thread: "
        f"{result['cpu_ms_per_message']:.3f} ms CPU per message, "
        f"{result['wall_ms_per_request']:.2f} ms wall per request"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
