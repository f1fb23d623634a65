"""Count the database statements of one send, through the whole API stack, in process.

    python -m bench.statements <username>     (with the bench server's environment)

Run by bench/run.py as a child process with the same environment as the web
server (database, emulator, settings), so it sends to the same queues through
the same middleware, authentication, view and service. It posts with Django's
test client, so every statement is on the one connection it watches, and hands
that connection back to the pool after each request, as a server's request does:

- `round_trips`: every statement Django sent (django.test.utils.CaptureQueriesContext),
  the BEGIN and COMMIT of each `transaction.atomic` block included (Django logs them
  too, since 4.2), and every check psycopg's pool made of a connection it handed out
  (CONN_HEALTH_CHECKS: an empty query, which Django does not see): what the database
  is asked per send, each a round trip,
- `transactions`: the COMMITs and ROLLBACKs among them,
- `sqs_calls`: every call Wipsie's own boto3 client makes (a botocore
  `before-call` hook on the client sqs_app.sqs_client hands out).

A warm-up request first fills the caches a running server has warm (the
authenticated user, the queue URL, the boto3 client), so the figures are a
steady-state request's. The result is one JSON document on stdout.
"""

import json
import os
import subprocess
import sys
import uuid

REQUESTS = 50  # per path; the figures are averages, and every send is the same work


def count_in_process(env: dict[str, str], *, username: str) -> dict[str, dict]:
    """Run this module in a child process with `env`; its figures by path, or {} with a note."""
    from . import procs

    env = {**env, "ALLOWED_HOSTS": env.get("ALLOWED_HOSTS", "") + ",testserver"}
    result = subprocess.run(
        [str(procs.BIN / "python"), "-m", "bench.statements", username],
        cwd=procs.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        print(f"ERRORS   counting the statements per send failed:\n{tail}", flush=True)
        return {}
    return json.loads(result.stdout.splitlines()[-1])


def _message(**extra) -> dict:
    return {"task_type": "user_action", "priority": "medium", "message": "statement count", **extra}


def _measure(client, connection, path: str, payloads: list[dict], messages_per_request: int) -> dict:
    from django.test.utils import CaptureQueriesContext

    from sqs_app import sqs_client

    sqs_calls = []  # the operation of every call Wipsie's boto3 client makes

    def count_sqs_call(model, **_):
        sqs_calls.append(model.name)

    events = sqs_client.get_client().meta.events
    events.register("before-call.sqs", count_sqs_call)
    try:
        with PoolCheckCounter(connection) as pool_checks, CaptureQueriesContext(connection) as queries:
            for payload in payloads:
                response = client.post(path, payload, format="json")
                if response.status_code != 200:
                    raise RuntimeError(f"{path} answered {response.status_code}: {response.content[:300]!r}")
                # What the end of a real request does (Django's close_old_connections, which
                # the test client holds back): the connection goes back to the pool, and the
                # next request checks one out, as under gunicorn.
                connection.close()
    finally:
        events.unregister("before-call.sqs", count_sqs_call)
    messages = len(payloads) * messages_per_request
    statements = [query["sql"].split(" ", 1)[0].upper() for query in queries.captured_queries]
    statements += [POOL_CHECK] * pool_checks.count
    transactions = statements.count("COMMIT") + statements.count("ROLLBACK")
    return {
        "requests": len(payloads),
        "messages": messages,
        "transactions_per_message": transactions / messages,
        "round_trips_per_message": len(statements) / messages,
        "statement_kinds": {kind: statements.count(kind) for kind in sorted(set(statements))},
        "sqs_calls_per_message": len(sqs_calls) / messages,
        "sqs_call_kinds": {name: sqs_calls.count(name) for name in sorted(set(sqs_calls))},
    }


POOL_CHECK = "(pool check)"


class PoolCheckCounter:
    """Counts, inside `with`, the checks psycopg's pool makes of the connections it hands out.

    With CONN_HEALTH_CHECKS on, the pool calls its `check` callback (psycopg_pool's
    private `_check`) on every checkout: a round trip Django's query log never sees.
    """

    def __init__(self, connection):
        self.count = 0
        self._pool = getattr(connection, "pool", None)  # None: SQLite, or no pool configured
        self._check = getattr(self._pool, "_check", None)

    def __enter__(self) -> "PoolCheckCounter":
        if self._check is not None:
            check = self._check

            def counted(conn):
                self.count += 1
                return check(conn)

            self._pool._check = counted
        return self

    def __exit__(self, *exc_info) -> None:
        if self._check is not None:
            self._pool._check = self._check


def main(username: str) -> dict[str, dict]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wipsie_site.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connections
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import AccessToken

    from wipsie_site.db_pool import check_idle_in_background

    check_idle_in_background()  # as each gunicorn worker does before its first request

    connection = connections["default"]
    user = get_user_model().objects.get(username=username)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    # Warm-up: the server's steady state (cached user, queue URL, boto3 client, pooled connection).
    client.post("/sqs/send", {"queue_name": "default", "message": _message()}, format="json")

    chosen = [str(uuid.uuid4()) for _ in range(REQUESTS)]
    batch = {"queue_name": "default", "messages": [{"message": _message()} for _ in range(10)]}
    return {
        "send (fresh id)": _measure(
            client,
            connection,
            "/sqs/send",
            [{"queue_name": "default", "message": _message()} for _ in range(REQUESTS)],
            1,
        ),
        "send (caller's id)": _measure(
            client,
            connection,
            "/sqs/send",
            [{"queue_name": "default", "message": _message(id=id_)} for id_ in chosen],
            1,
        ),
        "send (same id again)": _measure(
            client,
            connection,
            "/sqs/send",
            [{"queue_name": "default", "message": _message(id=id_)} for id_ in chosen],
            1,
        ),
        "send-batch (fresh ids)": _measure(client, connection, "/sqs/send-batch", [batch] * 10, 10),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
