"""A real worker serves its task metrics (from Celery's signals) on WORKER_METRICS_PORT."""

import urllib.request

import pytest

from conftest import free_port
from sqs_app.services import message_send
from tests.helpers import processing
from tests.test_metrics import metric

from .conftest import wait_until

pytestmark = pytest.mark.e2e


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - our own loopback server
        return response.read().decode()


def test_a_worker_serves_its_task_metrics_on_its_own_port(start_worker, tmp_path):
    metrics_dir = tmp_path / "worker-prometheus"
    metrics_dir.mkdir()
    port = free_port()
    start_worker(PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), WORKER_METRICS_PORT=str(port))

    sent = message_send(queue="task_processing", message=processing())
    text = wait_until(
        lambda: (
            (page := get(f"http://127.0.0.1:{port}/metrics"))
            and metric(page, "wipsie_tasks_total", task_type="processing", outcome="success")
            and page
        ),
        timeout=60,
    )

    assert sent.message_id
    assert metric(text, "task_processing_duration_seconds_count", task_type="processing") == 1
