"""Schemathesis hooks for tests/api/test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

A valid `wait_time_seconds` makes the receive long-poll SQS for that long on
an empty queue: up to 20 s a case. The run keeps every other value it
generates, and polls without waiting.
"""

import schemathesis


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    query = case.query or {}
    try:
        waits = 0 < int(query.get("wait_time_seconds", 0)) <= 20
    except (TypeError, ValueError):
        waits = False
    if waits:
        query["wait_time_seconds"] = 0
