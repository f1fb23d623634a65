"""gunicorn settings for the Wipsie API (`gunicorn wipsie_site.wsgi`).

Threads rather than many processes: a request spends most of its time waiting
on SQS, and every thread of a process shares one boto3 client and its pool.

2 processes x 4 threads by default, from measurement (bench/README.md): on 2
cores the server is CPU-bound, and 2 x 4 served single sends as fast as 2 x 16
with less queueing inside the process (more threads only wait for the GIL).
Each thread holds at most one database connection, so the database pool of a
process is sized to its threads (settings.py, DATABASE_POOL_SIZE).
"""

import os

bind = f"{os.environ.get('API_HOST', '0.0.0.0')}:{os.environ.get('API_PORT', '8000')}"  # noqa: S104
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Long polling on /sqs/receive may hold a request for up to 20 s.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# One JSON line per request with its request id (wipsie_site/access_log.py), on
# stdout ("-", the default), to a file (a path), or not at all ("off"), in which
# case nothing is formatted either.
_access_log = os.environ.get("GUNICORN_ACCESS_LOG", "-").strip()
accesslog = None if _access_log.lower() in ("", "off", "none", "false") else _access_log
logger_class = "wipsie_site.access_log.JsonAccessLogger"
errorlog = "-"
reload = os.environ.get("API_RELOAD", "false").lower() in ("1", "true", "yes")
# Let long URLs and headers through to Django, which refuses them in the error
# envelope (414 over MAX_URL_BYTES, 431 over MAX_HEADER_BYTES) instead of
# gunicorn's HTML page. 0 is gunicorn's "unlimited" request line, which it
# caps at 1 MiB; a header may be up to 32 KiB.
limit_request_line = 0
limit_request_field_size = 32 * 1024


def post_worker_init(worker):
    """Before the first request: the database pool checked in the background, not at each checkout."""
    from wipsie_site.db_pool import check_idle_in_background

    check_idle_in_background()


def child_exit(server, worker):
    """Prometheus multiprocess mode: a dead worker's live gauges stop counting (its counters stay)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
