"""Logs: one JSON object per line, the request id and message ids on each, nothing private above DEBUG."""

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from sqs_app.logging import CeleryResultFilter, RequestIdFilter, bind_message_context, message_context
from tests.helpers import notification, send

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def json_lines():
    """The root logger also writes through the production JSON formatter into a buffer."""
    config = dict(settings.LOGGING["formatters"]["json"])
    formatter_class = config.pop("()")
    module, _, name = formatter_class.rpartition(".")
    formatter = getattr(__import__(module, fromlist=[name]), name)(**config)
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(previous)


@pytest.mark.django_db
def test_each_send_logs_one_json_line_with_its_ids_and_the_request_id(api_client, sqs, json_lines):
    response = send(api_client, notification(), queue="notifications")

    [line] = [entry for entry in json_lines() if entry["logger"] == "sqs_app.messages"]
    assert line["message"] == (
        f"Message {line['message_id']} sent to notifications (correlation_id {line['correlation_id']})"
    )
    assert line["message_id"] == response.json()["message_id"]
    assert line["request_id"] == response["X-Request-ID"]
    assert line["correlation_id"]
    assert line["queue"] == "notifications" and line["via"] == "api"
    assert "alice@example.com" not in json.dumps(line)  # no recipient, no body


@pytest.mark.django_db
def test_a_batch_send_logs_one_line_per_message(api_client, sqs, json_lines):
    payload = {"queue_name": "default", "messages": [{"message": {"m": 1}}, {"message": {"m": 2}}]}
    results = api_client.post("/sqs/send-batch", payload, format="json").json()["results"]

    logged = [entry["message_id"] for entry in json_lines() if entry["logger"] == "sqs_app.messages"]
    assert logged == [r["message_id"] for r in results]


def test_a_traceback_is_one_json_record(json_lines):
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("wipsie.test").exception("It failed")

    [line] = json_lines()
    assert line["message"] == "It failed"
    assert "Traceback (most recent call last)" in line["exc_info"] and "ValueError: boom" in line["exc_info"]


def test_bound_message_context_is_on_every_line_until_reset(json_lines):
    log = logging.getLogger("wipsie.test")
    with message_context(message_id="m-1", correlation_id="c-1"):
        log.info("one")
        token = bind_message_context(task_type="notification")
        log.info("two")
    log.info("three")
    del token

    one, two, three = json_lines()
    assert (one["message_id"], one["correlation_id"]) == ("m-1", "c-1")
    assert (two["message_id"], two["task_type"]) == ("m-1", "notification")
    assert "message_id" not in three
    assert three["request_id"] == "-"


def test_celery_task_results_are_hidden_above_debug():
    record = logging.LogRecord(
        "celery.app.trace", logging.INFO, __file__, 1, "Task %(name)s succeeded: %(return_value)s",
        {"name": "notification", "return_value": {"recipient": "alice@example.com"}}, None,
    )  # fmt: skip

    CeleryResultFilter().filter(record)

    assert record.getMessage() == "Task notification succeeded: (result hidden above DEBUG)"


def test_celery_does_not_turn_stdout_fragments_into_log_records():
    assert settings.CELERY_WORKER_REDIRECT_STDOUTS is False
    assert "celery_results" in settings.LOGGING["loggers"]["celery.app.trace"]["filters"]


def test_log_file_log_level_and_json_are_honoured_by_a_real_process(tmp_path):
    log_file = tmp_path / "wipsie.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "wipsie_site.settings_test",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "WARNING",
        "LOG_FILE": str(log_file),
    }
    code = (
        "import logging; log = logging.getLogger('wipsie.test'); log.info('hidden'); "
        "log.warning('shown'); log.error('broken', exc_info=ValueError('x'))"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [line["message"] for line in lines] == ["shown", "broken"]
    assert all(line["level"] in ("WARNING", "ERROR") and line["request_id"] == "-" for line in lines)
    assert [json.loads(line)["message"] for line in result.stderr.splitlines()] == ["shown", "broken"]
