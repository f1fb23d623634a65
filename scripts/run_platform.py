"""`make run`: the whole platform on this machine, in one foreground process group.

Starts a local SQS (moto's server on loopback), prepares the embedded SQLite
database and the queues, then runs the web server (gunicorn), a Celery worker
and Celery beat. Ctrl-C stops everything; so does any one part dying.

Every setting can be overridden from the environment (or .env), e.g.
DATABASE_URL=postgres://postgres@127.0.0.1:5432/wipsie make run
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from wipsie_site import local_env  # noqa: E402 - after the path is set

BIN = Path(sys.executable).parent
RUN_DIR = ROOT / ".run"
# Every process writes its Prometheus samples here; /metrics merges them.
METRICS_DIR = RUN_DIR / "prometheus"

SQS_PORT = int(os.environ.get("LOCAL_SQS_PORT", "4566"))
API_PORT = int(os.environ.get("API_PORT", "8000"))

LOCAL_DEFAULTS = {
    "DEBUG": "true",
    "API_HOST": "127.0.0.1",
    "API_PORT": str(API_PORT),
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_REGION": "us-east-1",
    "AWS_ENDPOINT_URL_SQS": f"http://127.0.0.1:{SQS_PORT}",
    "AWS_ENDPOINT_URL_SNS": f"http://127.0.0.1:{SQS_PORT}",
    "LOG_FORMAT": "text",
    # Emails land as files under .run/outbox instead of being sent.
    "EMAIL_URL": f"filemail://{RUN_DIR / 'outbox'}",
    # Local development polls and calls back to services on this machine.
    "OUTBOUND_ALLOW_PRIVATE_NETWORKS": "true",
    "DJANGO_SUPERUSER_USERNAME": "admin",
    "DJANGO_SUPERUSER_PASSWORD": "admin",
    "DJANGO_SUPERUSER_EMAIL": "admin@localhost",
    "WEB_CONCURRENCY": "2",
    "GUNICORN_THREADS": "8",
    "PROMETHEUS_MULTIPROC_DIR": str(METRICS_DIR),
}
# Not handed to a second terminal's manage.py: they only matter to createsuperuser here.
_NOT_SHARED = {"DJANGO_SUPERUSER_USERNAME", "DJANGO_SUPERUSER_PASSWORD", "DJANGO_SUPERUSER_EMAIL"}


def main() -> int:
    env = {**LOCAL_DEFAULTS, **os.environ}
    RUN_DIR.mkdir(exist_ok=True)
    (RUN_DIR / "outbox").mkdir(exist_ok=True)
    reset_metrics_dir(Path(env["PROMETHEUS_MULTIPROC_DIR"]))
    processes: list[subprocess.Popen] = []

    def stop_all():
        # The servers first, the local SQS last: a worker finishing a task still needs it.
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                # Each part leads its own process group: this reaches gunicorn's
                # workers and Celery's pool too, so nothing is left holding a port.
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    # Explicit handlers: a shell that starts us in the background may have set
    # SIGINT to "ignore", and Python then never raises KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    for port, what in ((SQS_PORT, "LOCAL_SQS_PORT"), (API_PORT, "API_PORT")):
        if port_in_use(port):
            print(f"Port {port} is already in use (another `make run`?). Stop it, or set {what}.")
            return 1
    try:
        processes.append(
            start(
                "sqs",
                [BIN / "moto_server", "-H", "127.0.0.1", "-p", str(SQS_PORT)],
                env,
                log=RUN_DIR / "sqs.log",  # one line per request: too chatty for the terminal
            )
        )
        wait_for(f"http://127.0.0.1:{SQS_PORT}/moto-api/", "the local SQS")
        manage("migrate", "--noinput", env=env)
        manage("sqs_setup", env=env)
        ensure_superuser(env)
        processes.append(start("web", [BIN / "gunicorn", "wipsie_site.wsgi", "-c", "gunicorn.conf.py"], env))
        # Each its own heartbeat file (`python -m tasks_app.heartbeat --file ...` checks one).
        worker_env = {"WIPSIE_HEARTBEAT_FILE": str(RUN_DIR / "worker.heartbeat"), **env}
        beat_env = {"WIPSIE_HEARTBEAT_FILE": str(RUN_DIR / "beat.heartbeat"), **env}
        processes.append(
            start("worker", [BIN / "celery", "-A", "wipsie_site", "worker", "-l", "INFO"], worker_env)
        )
        processes.append(start("beat", [BIN / "celery", "-A", "wipsie_site", "beat", "-l", "INFO"], beat_env))
        wait_for(f"http://127.0.0.1:{API_PORT}/health", "the web server", accept_errors=True)
        local_env.write(shared_settings(env))
        print_banner(env)
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        failed = next(p for p in processes if p.poll() is not None)
        print(f"\n{failed.args[0]} exited with {failed.returncode}; stopping everything.", flush=True)
        return 1
    except KeyboardInterrupt:
        print("\nStopping (Ctrl-C)...", flush=True)
        return 0
    finally:
        local_env.remove()
        stop_all()


def shared_settings(env: dict) -> dict[str, str]:
    """What a second terminal needs to reach this platform: our defaults, as overridden."""
    keys = (set(LOCAL_DEFAULTS) - _NOT_SHARED) | {"DATABASE_URL", "SECRET_KEY", "SQS_QUEUE_PREFIX"}
    return {key: env[key] for key in sorted(keys) if key in env}


def reset_metrics_dir(path: Path) -> None:
    """A fresh directory per run: samples of processes from an earlier run must not count."""
    if path.exists():
        for stale in path.glob("*.db"):
            stale.unlink()
    path.mkdir(parents=True, exist_ok=True)


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start(name: str, command: list, env: dict, log: Path | None = None) -> subprocess.Popen:
    print(f"[{name}] {' '.join(str(part) for part in command)}", flush=True)
    output = log.open("a") if log else None
    # Each in its own session: Ctrl-C reaches only this supervisor, which then
    # stops the parts in order instead of all of them racing at once.
    return subprocess.Popen(
        [str(part) for part in command],
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT if output else None,
        start_new_session=True,
    )


def manage(*args: str, env: dict) -> None:
    subprocess.run([str(BIN / "python"), "manage.py", *args], cwd=ROOT, env=env, check=True)


def ensure_superuser(env: dict) -> None:
    """createsuperuser reads DJANGO_SUPERUSER_*; skip it when the user exists already."""
    exists = subprocess.run(
        [
            str(BIN / "python"),
            "manage.py",
            "shell",
            "-c",
            "import os, sys; from django.contrib.auth import get_user_model; "
            "sys.exit(0 if get_user_model().objects.filter("
            "username=os.environ['DJANGO_SUPERUSER_USERNAME']).exists() else 1)",
        ],
        cwd=ROOT,
        env=env,
    )
    if exists.returncode != 0:
        manage("createsuperuser", "--noinput", env=env)


def wait_for(url: str, what: str, timeout: float = 60, accept_errors: bool = False) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 - loopback
            return
        except urllib.error.HTTPError:
            if accept_errors:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not come up at {url}")
        time.sleep(0.2)


def print_banner(env: dict) -> None:
    base = f"http://127.0.0.1:{API_PORT}"
    user, password = env["DJANGO_SUPERUSER_USERNAME"], env["DJANGO_SUPERUSER_PASSWORD"]
    print(
        f"""
Wipsie is running. Ctrl-C stops everything.

  Admin        {base}/admin/        (log in as {user} / {password})
  API docs     {base}/api/docs/
  Health       {base}/health
  Metrics      {base}/metrics
  Local SQS    {env["AWS_ENDPOINT_URL_SQS"]}
  Emails       {RUN_DIR / "outbox"}

In another terminal, operator commands use this platform (settings in {local_env.path()}):
  .venv/bin/python manage.py sqs_queues

Get a token and send a message:
  TOKEN=$(curl -s -X POST {base}/api/token/ -H 'Content-Type: application/json' \\
      -d '{{"username": "{user}", "password": "{password}"}}' \\
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["access"])')
  curl -s -X POST {base}/sqs/send -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
      -d '{{"queue_name": "default", "message": {{"task_type": "user_action", "message": "hello"}}}}'
""",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
