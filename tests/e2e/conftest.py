"""Real processes for end-to-end tests: a Celery worker, and a local HTTP peer.

The worker is `celery -A wipsie_site worker`, exactly as in production, on the
moto server (over HTTP) and the test database; the test process talks to it
only through SQS and the database, as the API does.
"""

import hashlib
import hmac
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.db import connection

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_SECRET = "e2e-webhook-secret"


def worker_database_url() -> str:
    """The URL of the test database pytest-django made, for the worker to open too."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@dataclass
class WorkerProcess:
    process: subprocess.Popen
    log_path: Path
    outbox: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """kill -9 the worker and its pool processes, as a crash would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def start_worker(sqs, transactional_db, tmp_path):
    """Start real worker processes; each is stopped (or was killed) when the test ends."""
    started: list[WorkerProcess] = []
    outbox = tmp_path / "outbox"
    outbox.mkdir()

    def start(*extra_args: str, **extra_env: str) -> WorkerProcess:
        log_path = tmp_path / f"worker-{len(started)}.log"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "wipsie_site.settings",
            "DATABASE_URL": worker_database_url(),
            "AWS_ENDPOINT_URL_SQS": sqs,
            "AWS_ENDPOINT_URL_SNS": sqs,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "WEBHOOK_SIGNING_SECRET": WEBHOOK_SECRET,
            "EMAIL_URL": f"filemail://{outbox}",
            "OUTBOUND_ALLOW_PRIVATE_NETWORKS": "true",
            "TASK_RETRY_BASE_SECONDS": "0.5",
            "CELERY_WAIT_TIME_SECONDS": "1",
            "LOG_FORMAT": "text",
            "DATABASE_POOL_SIZE": "2",
            **extra_env,
        }
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [
                    str(BIN / "celery"),
                    "-A",
                    "wipsie_site",
                    "worker",
                    "-l",
                    "INFO",
                    "--concurrency",
                    "2",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    *extra_args,
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so kill() reaches the pool too
            )
        worker = WorkerProcess(process, log_path, outbox)
        started.append(worker)
        wait_until(lambda: "ready." in worker.log() or process.poll() is not None, timeout=60)
        assert process.poll() is None, f"the worker exited:\n{worker.log()}"
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def start_beat(start_worker, tmp_path):
    """Start `celery beat` (django-celery-beat's DatabaseScheduler) in an empty working directory."""
    started: list[subprocess.Popen] = []
    workdir = tmp_path / "beat-cwd"
    workdir.mkdir()

    def start() -> tuple[subprocess.Popen, Path]:
        log_path = tmp_path / "beat.log"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "wipsie_site.settings",
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": worker_database_url(),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "LOG_FORMAT": "text",
        }
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [str(BIN / "celery"), "-A", "wipsie_site", "beat", "-l", "INFO", "--pidfile="],
                cwd=workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(process)
        return process, log_path

    yield start, workdir
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)


def wait_until(condition, *, timeout: float = 45.0, interval: float = 0.2):
    """Wait for `condition()` to be truthy; a deadline for an outcome, not a speed test."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


@dataclass
class Peer:
    """A local HTTP server standing in for a webhook receiver or a polled API."""

    url: str
    requests: list[dict] = field(default_factory=list)
    # path -> (status, body bytes, delay seconds), or a list of them answered in
    # turn (the last one repeats)
    routes: dict[str, tuple[int, bytes, float] | list[tuple[int, bytes, float]]] = field(default_factory=dict)


@pytest.fixture
def peer():
    state = Peer(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def _respond(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            state.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers),
                    "body": body,
                    "at": time.monotonic(),
                }
            )
            route = state.routes.get(self.path, (200, b'{"ok": true}', 0.0))
            if isinstance(route, list):
                route = route.pop(0) if len(route) > 1 else route[0]
            status, payload, delay = route
            time.sleep(delay)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _respond

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()


def signature_is_valid(request: dict) -> bool:
    expected = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), request["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(request["headers"].get("X-Wipsie-Signature", ""), expected)


def json_body(request: dict) -> dict:
    return json.loads(request["body"])
