"""The consumer list (tasks_app.consumers): which workers consume which queue, and whether they still poll.

The worker's side, end to end with a real worker, is tests/e2e/test_consumers.py.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tasks_app import consumers
from tasks_app.consumers import PollRecorder, consumers_prune, consumers_record, queue_consumers
from tasks_app.models import QueueConsumer
from tests.helpers import jwt_client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def thresholds(settings):
    settings.WIPSIE_WORKER_STALL_SECONDS = 60
    settings.WIPSIE_CONSUMER_FORGET_SECONDS = 3600


def polled(hostname: str, pid: int, **seconds_ago: float) -> None:
    now = timezone.now()
    consumers_record(
        hostname=hostname,
        pid=pid,
        started_at=now - timedelta(hours=2),
        last_polls={queue: now - timedelta(seconds=ago) for queue, ago in seconds_ago.items()},
    )


def test_each_queue_lists_its_consumers_with_their_last_poll():
    polled("worker-a", 7, notifications=2, celery=4)

    listed = queue_consumers()

    assert list(listed) == ["celery", "notifications"]
    assert listed["notifications"]["status"] == "ok"
    assert 2 <= listed["notifications"]["last_poll_age_seconds"] < 30
    [process] = listed["notifications"]["processes"]
    assert (process["hostname"], process["pid"], process["stalled"]) == ("worker-a", 7, False)


def test_a_queue_whose_consumers_all_stopped_polling_is_stalled():
    polled("worker-a", 7, notifications=61)
    polled("worker-b", 8, notifications=120)

    entry = queue_consumers()["notifications"]

    assert entry["status"] == "stalled"
    assert 61 <= entry["last_poll_age_seconds"] < 90  # the freshest of them
    assert [p["stalled"] for p in entry["processes"]] == [True, True]
    assert consumers.stalled_queues(queue_consumers()) == ["notifications"]


def test_one_consumer_still_polling_keeps_its_queue_ok():
    polled("worker-a", 7, task_processing=600)  # killed, not yet forgotten
    polled("worker-b", 9, task_processing=1)  # its replacement

    entry = queue_consumers()["task_processing"]

    assert entry["status"] == "ok"
    assert [(p["pid"], p["stalled"]) for p in entry["processes"]] == [(7, True), (9, False)]


def test_no_threshold_means_never_stalled(settings):
    settings.WIPSIE_WORKER_STALL_SECONDS = 0
    polled("worker-a", 7, notifications=3000)

    assert queue_consumers()["notifications"]["status"] == "ok"


def test_a_consumer_silent_past_the_forget_time_is_ignored_then_pruned(settings):
    polled("gone", 1, notifications=3601)
    polled("here", 2, celery=1)

    assert list(queue_consumers()) == ["celery"]
    assert consumers_prune() == 1
    assert list(QueueConsumer.objects.values_list("hostname", flat=True)) == ["here"]


def test_recording_again_updates_the_row_in_one_statement():
    polled("worker-a", 7, notifications=30)

    with CaptureQueriesContext(connection) as queries:
        polled("worker-a", 7, notifications=0, celery=0)

    assert len([q for q in queries.captured_queries if "INSERT" in q["sql"]]) == 1
    assert QueueConsumer.objects.count() == 2
    assert queue_consumers()["notifications"]["last_poll_age_seconds"] < 30


# --- /health -------------------------------------------------------------------------------------


def test_health_lists_each_consumed_queue_and_stays_ok_while_they_poll(staff, sqs):
    polled("worker-a", 7, notifications=1)

    response = jwt_client(staff).get("/health")

    assert response.status_code == 200
    check = response.json()["checks"]["consumers"]
    assert check["status"] == "ok"
    [process] = check["queues"]["notifications"]["processes"]
    assert (process["hostname"], process["pid"]) == ("worker-a", 7)


def test_staff_signed_in_to_the_admin_read_the_hosts_too(client, staff, sqs):
    polled("worker-a", 7, notifications=1)
    client.force_login(staff)

    response = client.get("/health", HTTP_ACCEPT="application/json")

    [process] = response.json()["checks"]["consumers"]["queues"]["notifications"]["processes"]
    assert process["hostname"] == "worker-a"


def test_health_counts_the_consumers_without_naming_their_hosts_to_anyone_else(anon_client, bob, sqs):
    polled("worker-a", 7, notifications=1)
    polled("worker-b", 9, notifications=300)

    for client in (anon_client, jwt_client(bob)):  # bob is no staff
        response = client.get("/health")

        assert response.status_code == 200
        entry = response.json()["checks"]["consumers"]["queues"]["notifications"]
        assert entry == {
            "status": "ok",
            "last_poll_age_seconds": entry["last_poll_age_seconds"],
            "consumers": 2,
            "stalled_consumers": 1,
        }
        assert "worker-" not in response.content.decode()


def test_health_is_an_error_naming_the_queue_whose_consumers_stopped_polling(anon_client, sqs):
    polled("worker-a", 7, notifications=1, data_polling=300)

    response = anon_client.get("/health")

    assert response.status_code == 503
    body = response.json()
    assert (body["checks"]["database"]["status"], body["checks"]["sqs"]["status"]) == ("ok", "ok")
    check = body["checks"]["consumers"]
    assert (check["status"], check["error"]) == ("error", "CONSUMERS_STALLED")
    assert check["message"] == "No consumer of data_polling has polled it for more than 60 s"
    assert check["queues"]["data_polling"]["status"] == "stalled"
    assert check["queues"]["notifications"]["status"] == "ok"


def test_readiness_does_not_depend_on_the_consumers(anon_client, sqs_untouched):
    polled("worker-a", 7, notifications=300)

    response = anon_client.get("/health/ready")

    assert response.status_code == 200
    assert set(response.json()["checks"]) == {"database"}


# --- The worker's side ---------------------------------------------------------------------------


def test_the_recorder_writes_the_time_of_each_queues_last_poll_not_the_time_of_writing(settings):
    settings.WIPSIE_CONSUMER_RECORD_SECONDS = 3600  # its thread never writes during the test
    recorder = PollRecorder()
    recorder.start()
    recorder.polled("notifications")
    recorder._polled["task_processing"] = (timezone.now() - timedelta(seconds=90)).timestamp()

    recorder.record()

    listed = queue_consumers()
    assert listed["notifications"]["status"] == "ok"
    assert listed["task_processing"]["status"] == "stalled"
    assert listed["notifications"]["processes"][0]["pid"] == recorder.pid


def test_a_clean_shutdown_removes_the_worker_from_the_list(settings):
    settings.WIPSIE_CONSUMER_RECORD_SECONDS = 3600
    recorder = PollRecorder()
    recorder.start()
    recorder.polled("notifications")
    recorder.record()
    polled("another-worker", 3, notifications=1)

    recorder.stop()

    assert [(p["hostname"], p["pid"]) for p in queue_consumers()["notifications"]["processes"]] == [
        ("another-worker", 3)
    ]


def test_a_recorder_that_cannot_reach_the_database_logs_once_and_carries_on(settings, caplog, monkeypatch):
    from django.db import OperationalError

    caplog.set_level("INFO", logger="tasks_app.consumers")
    recorder = PollRecorder()
    recorder.hostname, recorder.pid, recorder.started_at = "worker-a", 7, timezone.now()
    recorder.polled("notifications")

    def down(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(consumers, "consumers_record", down)
    recorder.record()
    recorder.record()
    monkeypatch.undo()
    recorder.record()

    warnings = [r.getMessage() for r in caplog.records if r.name == "tasks_app.consumers"]
    assert QueueConsumer.objects.get().hostname == "worker-a"
    assert warnings == [
        "Could not record this worker's polls (connection refused); retrying every few seconds",
        "Recording this worker's polls again",
    ]
