"""The production web server's configuration (gunicorn.conf.py) and its JSON access log.

The access log is checked on a real gunicorn serving Wipsie, as in production
(the `gunicorn` fixture, tests/conftest.py).
"""

import json
import os
import runpy
import urllib.error
import urllib.request
from pathlib import Path
from unittest import mock

import pytest

ROOT = Path(__file__).resolve().parent.parent


def config(**env: str) -> dict:
    """gunicorn.conf.py as gunicorn reads it, with only these variables set."""
    with mock.patch.dict(os.environ, env, clear=True):
        return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_the_default_is_two_processes_of_four_threads():
    shown = config()

    assert (shown["workers"], shown["threads"], shown["worker_class"]) == (2, 4, "gthread")


def test_workers_and_threads_come_from_the_environment():
    shown = config(WEB_CONCURRENCY="3", GUNICORN_THREADS="8")

    assert (shown["workers"], shown["threads"]) == (3, 8)


@pytest.mark.parametrize(
    ("value", "expected"), [(None, "-"), ("/var/log/a.log", "/var/log/a.log"), ("off", None)]
)
def test_the_access_log_goes_to_stdout_a_file_or_nowhere(value, expected):
    shown = config(**({"GUNICORN_ACCESS_LOG": value} if value else {}))

    assert shown["accesslog"] == expected
    assert shown["logger_class"] == "wipsie_site.access_log.JsonAccessLogger"


def get(url: str, **headers: str) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10):  # noqa: S310
            return 200
    except urllib.error.HTTPError as exc:
        return exc.code


def access_lines(text: str, path: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if f'"path": "{path}"' in line]


def test_the_access_log_line_is_json_with_the_request_id(gunicorn):
    server = gunicorn()  # the default: stdout

    assert get(f"{server.base}/nowhere?receipt_handle=secret", **{"X-Request-ID": "trace-me-42"}) == 404

    output = server.stop()
    [line] = access_lines(output, "/nowhere")
    assert line["request_id"] == "trace-me-42"
    assert (line["method"], line["status"], line["logger"]) == ("GET", 404, "gunicorn.access")
    assert isinstance(line["duration_ms"], float)
    assert "secret" not in output


def test_the_access_log_can_go_to_a_file(gunicorn, tmp_path):
    log = tmp_path / "access.log"
    server = gunicorn(GUNICORN_ACCESS_LOG=str(log))

    assert get(f"{server.base}/nowhere") == 404

    assert access_lines(server.stop(), "/nowhere") == []
    [line] = access_lines(log.read_text(), "/nowhere")
    assert line["request_id"]


def test_an_access_log_that_is_off_writes_nothing(gunicorn):
    server = gunicorn(GUNICORN_ACCESS_LOG="off")

    assert get(f"{server.base}/nowhere") == 404

    output = server.stop()
    assert access_lines(output, "/nowhere") == []
    assert "gunicorn.access" not in output
