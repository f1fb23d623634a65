"""The web server's database pool: idle connections checked in the background, not at every checkout.

Django has psycopg's pool check each connection as it hands it out
(CONN_HEALTH_CHECKS): an empty query, so that a connection that broke while
idle (the database restarted, failed over, or a proxy dropped it) is replaced
instead of failing the request that drew it. That check is a round trip on
every request that touches the database: on a send, one of its two (the other
is the history write itself). On loopback it is small (0.11 ms and 0.06 ms of
the server's CPU, measured here); across a network it is a network round trip
on every request.

So each gunicorn worker (gunicorn.conf.py, `post_worker_init`) turns it off
and instead checks the connections idle in its pool every
DATABASE_POOL_CHECK_SECONDS, with psycopg_pool's `ConnectionPool.check()`,
the periodic check psycopg's documentation suggests: it replaces a broken
connection before a request draws it. 2 s by default: within 5 s of the
database's return after an outage no request may fail
(tests/e2e/test_outages.py), so no connection it dropped may wait longer.

What this gives up: a connection that breaks between two checks fails the one
request that draws it (its database error, in the envelope), and Django then
discards it. A send whose history write fails that way still answers 200, as
the README's guarantees say: SQS has the message, and its history is
recorded when it is next seen. DATABASE_POOL_CHECK_SECONDS=0 keeps the check
at every checkout.

Every other process (Celery beat, management commands, runserver) keeps the
check at every checkout; Celery workers use no pool (wipsie_site/celery.py).
"""

import logging
import threading
import time

from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)


def check_idle_in_background() -> threading.Thread | None:
    """In this process: no check at checkout, a thread that checks idle connections instead.

    Call it before the process serves its first request (the pools are made
    with the setting they find then). Returns the thread, or None when there
    is nothing to do: no pool, or DATABASE_POOL_CHECK_SECONDS is 0.
    """
    interval = settings.DATABASE_POOL_CHECK_SECONDS
    pooled = [alias for alias in connections if connections[alias].settings_dict["OPTIONS"].get("pool")]
    if interval <= 0 or not pooled:
        return None
    for alias in pooled:
        connection = connections[alias]
        connection.settings_dict["CONN_HEALTH_CHECKS"] = False
        # A pool made before now (a query at start-up) was made with the check:
        # close it, so that the next connection makes one without.
        connection.close()
        connection.close_pool()
    thread = threading.Thread(
        target=_check_every, args=(interval, pooled), name="wipsie-db-pool-check", daemon=True
    )
    thread.start()
    return thread


def check_idle_connections(aliases: list[str]) -> None:
    """Check every connection idle in these databases' pools; psycopg replaces the broken ones."""
    for alias in aliases:
        pool = connections[alias].pool  # the process's pool, whichever thread asks
        if pool is not None and not pool.closed:
            pool.check()


def _check_every(interval: float, aliases: list[str]) -> None:
    while True:
        time.sleep(interval)
        try:
            check_idle_connections(aliases)
        except Exception:  # noqa: BLE001 - the next round tries again; requests are not affected
            logger.exception("Checking the database pool's idle connections failed")
