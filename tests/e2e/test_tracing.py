"""End to end: one grep for a message's ids follows it from the API request to its outcome."""

import json
import logging
import uuid

import pytest

from sqs_app.models import MessageStatus

from .conftest import wait_until
from .test_worker import finished, send, webhook

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def test_one_grep_for_the_correlation_id_follows_a_message_through_its_retry(
    api_client, start_worker, peer, caplog
):
    peer.routes["/flaky"] = [(503, b'{"error": "busy"}', 0.0), (200, b'{"ok": true}', 0.0)]
    worker = start_worker(LOG_FORMAT="json", TASK_RETRY_BASE_SECONDS="1")
    correlation_id = f"trace-{uuid.uuid4().hex}"

    with caplog.at_level(logging.INFO, logger="sqs_app.messages"):
        message_id = send(
            api_client, "notifications", webhook(peer, path="/flaky") | {"correlation_id": correlation_id}
        )
    message = wait_until(lambda: finished(message_id))
    assert message.status == MessageStatus.SUCCEEDED

    # The API's line for the send ...
    [sent] = [r for r in caplog.records if getattr(r, "correlation_id", None) == correlation_id]
    assert sent.message_id == message_id

    # ... and the worker's, one JSON object per line, each naming the message, over both attempts.
    # Celery logs "succeeded" after the task returns, so after the row says so: wait for the line.
    def worker_lines():
        written = worker.log().split("\n")[:-1]  # the last piece may be a line still being written
        lines = [json.loads(line) for line in written if correlation_id in line]
        return lines if any("succeeded" in line["message"] for line in lines) else None

    lines = wait_until(worker_lines, timeout=15)
    assert {line["message_id"] for line in lines} == {message_id}
    assert {line["queue"] for line in lines} == {"notifications"}
    assert {line["attempt"] for line in lines} >= {"1", "2"}
    said = " ".join(line["message"] for line in lines)
    assert "retry 1 in 1 s" in said
    assert "succeeded" in said
