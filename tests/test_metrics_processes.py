"""Metrics across real processes: gunicorn's workers merged, and a Celery worker's own endpoint."""

import urllib.request

import pytest
from celery import current_app
from celery.exceptions import Reject

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
    # Not /health/live: the fixture asks it until gunicorn answers, and a slow first answer
    # may be counted after `before`.
    before = metric(get(f"{base}/metrics"), "api_requests_total", method="GET", endpoint="/health/ready")
    for _ in range(30):
        get(f"{base}/health/ready")
    seen = [
        metric(get(f"{base}/metrics"), "api_requests_total", method="GET", endpoint="/health/ready")
        for _ in range(10)
    ]
    pids = {path.name.split("_")[-1] for path in metrics_dir.glob("counter_*.db")}
    server.stop()

    # Every scrape, whichever worker answered it, sees all 30 requests of all workers.
    assert seen == [(before or 0) + 30] * 10
    assert len(pids) > 1, "the requests should have been spread over several workers"


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
