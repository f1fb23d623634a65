"""Worker metrics, from Celery's own signals: they hold whatever the task code inside does.

- task_processing_duration_seconds{task_type} (the spec's name): prerun to postrun;
- wipsie_tasks_total{task_type, outcome}: outcome is Celery's final state
  (success, failure, retry, ...);
- wipsie_task_retries_total{task_type}: Celery retries (task_retry), and a
  message handed back to its own queue for its backoff (the task rejects it
  with a reason starting "retry ", tasks_app.tasks);
- wipsie_tasks_dead_lettered_total{task_type}: a message task that ends in
  failure has put its message on the DLQ (tasks_app.tasks: a permanent error
  or retries exhausted), so each task_failure of one is one dead letter.

The pool processes write to PROMETHEUS_MULTIPROC_DIR; the worker's main
process serves them all on WORKER_METRICS_PORT (Kubernetes scrapes each
worker pod there), and a pool process that exits is marked dead.
"""

import logging
import os
import time

from celery.signals import (
    task_failure,
    task_postrun,
    task_prerun,
    task_retry,
    worker_init,
    worker_process_shutdown,
)
from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess, start_http_server

logger = logging.getLogger(__name__)

TASK_DURATION = Histogram(
    "task_processing_duration_seconds",
    "Task processing time",
    ["task_type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
TASKS = Counter("wipsie_tasks_total", "Tasks run by the workers, by outcome", ["task_type", "outcome"])
RETRIES = Counter("wipsie_task_retries_total", "Task retries scheduled", ["task_type"])
DEAD_LETTERS = Counter(
    "wipsie_tasks_dead_lettered_total", "Message tasks that ended on the DLQ", ["task_type"]
)

# Message families whose failure means their message went to the DLQ.
MESSAGE_TASKS = {"data_polling", "processing", "notification", "unroutable_message"}

_started: dict[str, float] = {}


@task_prerun.connect
def _task_started(task_id=None, **kwargs) -> None:
    _started[task_id] = time.perf_counter()


@task_postrun.connect
def _task_finished(task_id=None, task=None, state=None, retval=None, **kwargs) -> None:
    started = _started.pop(task_id, None)
    task_type = getattr(task, "name", "unknown")
    if started is not None:
        TASK_DURATION.labels(task_type=task_type).observe(time.perf_counter() - started)
    TASKS.labels(task_type=task_type, outcome=(state or "unknown").lower()).inc()
    if state == "REJECTED" and str(getattr(retval, "reason", "")).startswith("retry "):
        RETRIES.labels(task_type=task_type).inc()


@task_retry.connect
def _task_retried(sender=None, **kwargs) -> None:
    RETRIES.labels(task_type=getattr(sender, "name", "unknown")).inc()


@task_failure.connect
def _task_failed(sender=None, **kwargs) -> None:
    task_type = getattr(sender, "name", "unknown")
    if task_type in MESSAGE_TASKS:
        DEAD_LETTERS.labels(task_type=task_type).inc()


@worker_process_shutdown.connect
def _pool_process_exits(pid=None, **kwargs) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid or os.getpid())


@worker_init.connect
def _serve_worker_metrics(**kwargs) -> None:
    from django.conf import settings

    port = settings.WORKER_METRICS_PORT
    if not port:
        return
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        logger.warning(
            "WORKER_METRICS_PORT is set but PROMETHEUS_MULTIPROC_DIR is not: no worker metrics served"
        )
        return
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    start_http_server(port, registry=registry)
    logger.info("Worker metrics on port %s", port)
