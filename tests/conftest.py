"""Fixtures shared by the tests under tests/ (the root conftest.py has the rest): gunicorn, SQS
untouched, a hung SQS."""

import os
import signal
import subprocess
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest

from conftest import BIN, free_port, wait_for_http
from sqs_app import sqs_client

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def sqs_untouched():
    """For requests refused before SQS: any use of SQS fails the test.

    Cheaper than the `sqs` fixture (no moto reset), and a stronger claim than
    an empty queue: nothing was even attempted.
    """
    with mock.patch.object(
        sqs_client, "get_client", side_effect=AssertionError("SQS must not be called")
    ) as get_client:
        yield
    assert not get_client.called, "SQS was called"


@pytest.fixture
def hung_sqs(settings):
    """An SQS that accepts connections and never answers (a hung endpoint), for the admin's client.

    `connections` are the connections it was asked on (each one waits for its timeout).
    """
    import socket
    import threading

    from sqs_app import sqs_client

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held, stop = [], threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            held.append(connection)  # read nothing, answer nothing

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    settings.AWS_ENDPOINT_URL_SQS = f"http://127.0.0.1:{listener.getsockname()[1]}"
    sqs_client.reset()
    yield SimpleNamespace(url=settings.AWS_ENDPOINT_URL_SQS, connections=held)
    stop.set()
    thread.join(timeout=5)
    for connection in held:
        connection.close()
    listener.close()
    sqs_client.reset()


# --- A real gunicorn ---------------------------------------------------------------------------


class GunicornServer:
    """`gunicorn wipsie_site.wsgi -c gunicorn.conf.py` with the production settings (DEBUG off).

    On loopback, plain HTTP (no TLS proxy in front: SECURE_SSL_REDIRECT off),
    one process of two threads and a database nothing uses, unless `env` says
    otherwise. Its stdout and stderr go to files in `workdir`.
    """

    def __init__(self, workdir: Path, **env: str):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.stdout = workdir / "stdout.log"
        self.stderr = workdir / "stderr.log"
        settings = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "wipsie_site.settings",
            "DEBUG": "false",
            "SECRET_KEY": "a-real-secret-for-gunicorn-tests-only-0123456789-abcdefghij",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "DATABASE_URL": f"sqlite:///{workdir / 'unused.sqlite3'}",
            "API_HOST": "127.0.0.1",
            "API_PORT": str(self.port),
            "WEB_CONCURRENCY": "1",
            "GUNICORN_THREADS": "2",
            **env,
        }
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                [str(BIN / "gunicorn"), "wipsie_site.wsgi", "-c", "gunicorn.conf.py"],
                cwd=ROOT,
                env=settings,
                stdout=out,
                stderr=err,
                start_new_session=True,  # its own process group: stop() reaches its workers
            )
        try:
            wait_for_http(f"{self.base}/health/live", timeout=60)
        except OSError:
            self.stop()
            raise AssertionError(f"gunicorn did not start:\n{self.stderr.read_text()}") from None

    def stop(self) -> str:
        """Stop it gracefully (every log line written); its stdout."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        return self.stdout.read_text()


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory):
    """Start a real gunicorn: `gunicorn(**env)` -> GunicornServer.

    Module-scoped, so that a module may share one server between its tests;
    each server is stopped by its test (`server.stop()`) or when the module ends.
    """
    servers: list[GunicornServer] = []

    def start(**env: str) -> GunicornServer:
        servers.append(GunicornServer(tmp_path_factory.mktemp("gunicorn"), **env))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()
