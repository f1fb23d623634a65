"""bench/statements.py counts the pool's checks of the connections it hands out, which Django's log misses."""

from types import SimpleNamespace

import pytest
from django.db import connection

from bench.statements import PoolCheckCounter

needs_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="psycopg's pool: PostgreSQL")


def a_pool(**options):
    from psycopg_pool import ConnectionPool

    # Django's own connection parameters, on a pool of the test's own: Django's is not under test.
    return ConnectionPool(kwargs={**connection.get_connection_params(), "autocommit": True}, **options)


@needs_postgresql
@pytest.mark.django_db
def test_each_checkout_of_a_checking_pool_is_counted_inside_with_only():
    from psycopg_pool import ConnectionPool

    with a_pool(check=ConnectionPool.check_connection, min_size=1, max_size=1) as pool:
        with PoolCheckCounter(SimpleNamespace(pool=pool)) as checks:
            for _ in range(3):
                with pool.connection() as conn:
                    conn.execute("SELECT 1")
        with pool.connection():
            pass

        assert checks.count == 3
        assert pool._check is ConnectionPool.check_connection  # the pool's own check again


@needs_postgresql
@pytest.mark.django_db
def test_a_pool_that_does_not_check_counts_nothing():
    with a_pool(min_size=1, max_size=1) as pool:
        with PoolCheckCounter(SimpleNamespace(pool=pool)) as checks, pool.connection():
            pass

        assert checks.count == 0
        assert pool._check is None


def test_a_database_without_a_pool_counts_nothing():
    with PoolCheckCounter(SimpleNamespace(pool=None)) as checks:
        pass

    assert checks.count == 0
