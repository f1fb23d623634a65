"""Metrics across real processes: gunicorn's workers merged, and a Celery worker's own endpoint."""

import json
import time
import urllib.request

import pytest
from celery import current_app
from celery.exceptions import Reject
from prometheus_client.mmap_dict import MmapedDict

from tasks_app import metrics as worker_metrics
from tests.e2e.conftest import worker_database_url

from .test_metrics import metric


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - our own loopback server
        return response.read().decode()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_counters_add_up_over_gunicorn_workers_and_never_reset_between_scrapes(sqs, gunicorn, tmp_path):
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    server = gunicorn(
        DATABASE_URL=worker_database_url(),
        AWS_ENDPOINT_URL_SQS=sqs,
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        WEB_CONCURRENCY="3",
        DATABASE_POOL_SIZE="1",
        DATABASE_MAX_OVERFLOW="1",
    )
    base = server.base
    ready = f"{base}/health/ready"
    # Not /health/live: the fixture asks it until gunicorn answers, and a slow first answer
    # may be counted after `before`.
    before = metric(get(f"{base}/metrics"), "api_requests_total", method="GET", endpoint="/health/ready")
    # Each request goes to whichever worker accepts it first, and on a busy machine the others
    # may still be starting: ask until at least two workers have counted some (30 requests at
    # least), so that a scrape must add up several workers' files to see them all.
    sent, deadline = 0, time.monotonic() + 60
    while sent < 30 or (len(ready_requests_by_worker(metrics_dir)) < 2 and time.monotonic() < deadline):
        get(ready)
        sent += 1
    by_worker = ready_requests_by_worker(metrics_dir)
    seen = [
        metric(get(f"{base}/metrics"), "api_requests_total", method="GET", endpoint="/health/ready")
        for _ in range(10)
    ]
    server.stop()

    assert len(by_worker) > 1, f"one worker served all {sent} requests: {by_worker}"
    # Every scrape, whichever worker answered it, sees all the requests of all workers.
    assert seen == [(before or 0) + sent] * 10
    assert sum(by_worker.values()) == (before or 0) + sent


def ready_requests_by_worker(metrics_dir) -> dict[str, float]:
    """The /health/ready requests each gunicorn worker counted, read from its own multiprocess file."""
    counted = {}
    for path in metrics_dir.glob("counter_*.db"):
        pid = path.stem.split("_")[-1]
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(path)):
            _metric, sample, labels, _help = json.loads(key)
            if sample == "api_requests_total" and labels == {"method": "GET", "endpoint": "/health/ready"}:
                counted[pid] = counted.get(pid, 0) + value
    return counted


@pytest.fixture
def demo_task():
    app = current_app._get_current_object()

    @app.task(name="metrics_demo", bind=True, max_retries=1)
    def metrics_demo(self, outcome):
        if outcome == "fail":
            raise ValueError("no")
        if outcome == "retry":
            raise self.retry(countdown=0, exc=ValueError("again"))
        if outcome == "backoff":  # a retry on the message's own queue (tasks_app.tasks)
            raise Reject("retry 1 in 2 s: still down", requeue=True)
        return "ok"

    worker_metrics.MESSAGE_TASKS.add("metrics_demo")
    yield metrics_demo
    worker_metrics.MESSAGE_TASKS.discard("metrics_demo")


def value(counter, **labels) -> float:
    return counter.labels(**labels)._value.get()


def test_task_signals_count_outcomes_retries_dead_letters_and_durations(demo_task):
    before = {
        "success": value(worker_metrics.TASKS, task_type="metrics_demo", outcome="success"),
        "failure": value(worker_metrics.TASKS, task_type="metrics_demo", outcome="failure"),
        "dead": value(worker_metrics.DEAD_LETTERS, task_type="metrics_demo"),
        "retries": value(worker_metrics.RETRIES, task_type="metrics_demo"),
    }

    demo_task.apply(args=["ok"])
    demo_task.apply(args=["fail"])
    demo_task.apply(args=["retry"])
    demo_task.apply(args=["backoff"])

    assert value(worker_metrics.TASKS, task_type="metrics_demo", outcome="success") == before["success"] + 1
    assert value(worker_metrics.TASKS, task_type="metrics_demo", outcome="failure") >= before["failure"] + 1
    assert value(worker_metrics.DEAD_LETTERS, task_type="metrics_demo") >= before["dead"] + 1
    assert value(worker_metrics.RETRIES, task_type="metrics_demo") >= before["retries"] + 2
    assert value(worker_metrics.TASKS, task_type="metrics_demo", outcome="rejected") >= 1
    samples = {
        s.name: s.value
        for s in worker_metrics.TASK_DURATION.collect()[0].samples
        if s.labels.get("task_type") == "metrics_demo"
    }
    assert samples["task_processing_duration_seconds_count"] >= 3
