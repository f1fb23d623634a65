"""End to end: a real worker in the consumer list that every process reads (tasks_app.consumers).

It appears with its queues; stopped (SIGSTOP: alive, polling nothing), it is
flagged by /health once the threshold has passed; resumed, it is back; shut
down cleanly, it is gone.
"""

import os
import signal
import socket

import pytest

from tasks_app.consumers import queue_consumers

from .conftest import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

QUEUES = ["notifications", "task_processing"]


def processes_of(queue: str) -> list[tuple[str, int]]:
    entry = queue_consumers().get(queue) or {}
    return [(p["hostname"], p["pid"]) for p in entry.get("processes", [])]


def consumers_check(client) -> tuple[int, dict]:
    response = client.get("/health")
    return response.status_code, response.json()["checks"]["consumers"]


def test_a_worker_that_stops_polling_is_flagged_and_one_that_shuts_down_leaves(
    start_worker, anon_client, settings
):
    settings.WIPSIE_WORKER_STALL_SECONDS = 4  # /health's threshold, in this process
    worker = start_worker("-Q", ",".join(QUEUES), WIPSIE_CONSUMER_RECORD_SECONDS="0.5")
    me = (socket.gethostname(), worker.process.pid)

    wait_until(lambda: all(processes_of(queue) == [me] for queue in QUEUES), timeout=30)
    wait_until(lambda: consumers_check(anon_client)[1]["status"] == "ok", timeout=30)
    assert set(consumers_check(anon_client)[1]["queues"]) == set(QUEUES)

    os.kill(worker.process.pid, signal.SIGSTOP)  # the main process: alive, no more polls
    try:

        def both_stalled():
            code, check = consumers_check(anon_client)
            statuses = [entry["status"] for entry in check.get("queues", {}).values()]
            return statuses == ["stalled", "stalled"] and (code, check)

        code, check = wait_until(both_stalled, timeout=30)
        assert (code, check["status"], check["error"]) == (503, "error", "CONSUMERS_STALLED")
        assert anon_client.get("/health/ready").status_code == 200  # readiness never asks
    finally:
        os.kill(worker.process.pid, signal.SIGCONT)

    wait_until(lambda: consumers_check(anon_client)[1]["status"] == "ok", timeout=30)

    worker.stop()  # SIGTERM: Celery's warm shutdown
    assert worker.process.returncode == 0, worker.log()
    assert all(processes_of(queue) == [] for queue in QUEUES)
    assert f"stopped consuming {', '.join(QUEUES)}" in worker.log()
