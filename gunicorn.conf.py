"""gunicorn settings for the Wipsie API (`gunicorn wipsie_site.wsgi`).

Threads rather than many processes: a request spends most of its time waiting
on SQS, and every thread of a process shares one boto3 client and its pool.
"""

import multiprocessing
import os

bind = f"{os.environ.get('API_HOST', '0.0.0.0')}:{os.environ.get('API_PORT', '8000')}"  # noqa: S104
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", max(2, multiprocessing.cpu_count())))
threads = int(os.environ.get("GUNICORN_THREADS", "16"))
# Long polling on /sqs/receive may hold a request for up to 20 s.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
reload = os.environ.get("API_RELOAD", "false").lower() in ("1", "true", "yes")


def child_exit(server, worker):
    """Prometheus multiprocess mode: a dead worker's live gauges stop counting (its counters stay)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
