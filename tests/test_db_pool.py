"""The web server checks its pool's idle connections in the background (wipsie_site/db_pool.py).

On a real gunicorn and PostgreSQL: the server's connections are killed while
idle, as a database restart or a failover kills them, and the next request
must not be the one that finds out.
"""

import time
import uuid

import psycopg
import pytest
from django.db import connection

from tests.test_gunicorn import get

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="psycopg's pool: PostgreSQL")


def database_url(application_name: str) -> str:
    """The suite's PostgreSQL server, its maintenance database: `/health/ready` only runs SELECT 1."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return (
        f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/postgres"
        f"?application_name={application_name}"
    )


def backends(application_name: str) -> set[int]:
    with psycopg.connect(database_url("wipsie-test-observer")) as observer:
        rows = observer.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", [application_name]
        ).fetchall()
    return {pid for (pid,) in rows}


def kill(pids: set[int]) -> None:
    with psycopg.connect(database_url("wipsie-test-observer")) as observer:
        for pid in pids:
            observer.execute("SELECT pg_terminate_backend(%s)", [pid])


def serve(gunicorn, check_seconds: str):
    name = f"wipsie-test-{uuid.uuid4().hex[:12]}"
    server = gunicorn(
        DATABASE_URL=database_url(name),
        DATABASE_POOL_CHECK_SECONDS=check_seconds,
        WEB_CONCURRENCY="1",
        GUNICORN_THREADS="1",
        DATABASE_POOL_SIZE="1",
    )
    assert get(f"{server.base}/health/ready") == 200
    idle = backends(name)
    assert len(idle) == 1  # the pool's one connection, back in the pool
    kill(idle)
    return server, name, idle


def wait_for_new_backend(name: str, killed: set[int], timeout: float = 15) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = backends(name)
        if now and not now & killed:
            return now
        time.sleep(0.2)
    raise AssertionError(f"no new connection for {name} within {timeout} s")


def test_a_connection_killed_while_idle_is_replaced_before_a_request_draws_it(gunicorn):
    server, name, killed = serve(gunicorn, check_seconds="1")

    # Within a check's interval, the worker's pool has replaced it on its own.
    wait_for_new_backend(name, killed)
    assert get(f"{server.base}/health/ready") == 200


def test_with_the_check_at_every_checkout_the_next_request_gets_a_new_connection(gunicorn):
    server, name, killed = serve(gunicorn, check_seconds="0")

    assert get(f"{server.base}/health/ready") == 200
    assert backends(name) and not backends(name) & killed


def test_without_any_check_the_request_that_draws_the_dead_connection_fails_once(gunicorn):
    """What the background check is for: the cost of not checking at all."""
    server, name, killed = serve(gunicorn, check_seconds="3600")

    time.sleep(1)  # no check comes in time
    assert get(f"{server.base}/health/ready") == 503
    assert get(f"{server.base}/health/ready") == 200  # Django discarded it; the pool made another
