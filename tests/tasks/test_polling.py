"""The data-polling family: poll a real local HTTP server, filter, store, and recur."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from sqs_app.models import Message, MessageStatus
from sqs_app.schemas import build_standard_message
from tasks_app import tasks
from tasks_app.errors import PermanentTaskError, TemporaryTaskError
from tasks_app.families import validated_task_data
from tasks_app.models import PollResult, PollSchedule
from tasks_app.poll_schedules import poll_schedule_pause, poll_schedule_resume, poll_schedule_stop
from tasks_app.polling import poll_source
from tests.helpers import drain, message_count, recurring_poll, worker_claim

pytestmark = pytest.mark.django_db

FEED = [
    {"id": 1, "status": "active", "score": 12, "owner": {"team": "blue"}},
    {"id": 2, "status": "paused", "score": 30, "owner": {"team": "blue"}},
    {"id": 3, "status": "active", "score": 5, "owner": {"team": "red"}},
    {"id": 4, "status": "active", "score": 10, "owner": {"team": "blue"}},
]


# --- A JSON source on loopback ------------------------------------------------------------------


class Source(ThreadingHTTPServer):
    """Serves `routes[path] = (status, body bytes)`; counts the requests it gets."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _SourceHandler)
        self.routes: dict[str, tuple[int, bytes]] = {}
        self.hits = 0

    def serve(self, path: str, payload, status: int = 200) -> str:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.routes[path] = (status, body)
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class _SourceHandler(BaseHTTPRequestHandler):
    server: Source

    def do_GET(self):
        self.server.hits += 1
        status, body = self.server.routes.get(self.path, (404, b"{}"))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


@pytest.fixture
def source(settings):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = True  # the source is on loopback
    settings.OUTBOUND_TIMEOUT_SECONDS = 2
    server = Source()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def polling_message(url: str, **data) -> dict:
    message = {"task_type": "data_polling", "message": "Poll the feed", "data": {"source_url": url, **data}}
    return build_standard_message(message=message, queue="data_polling", source="api")


def poll(url: str, *, record: Message | None = None, message: dict | None = None, **data) -> dict:
    """Validate and run one poll as a worker does; returns the task result."""
    message = message or polling_message(url, **data)
    return poll_source(
        message=message,
        data=validated_task_data(message, task_type="data_polling"),
        record_pk=record.pk if record else None,
    )


def kept_ids(result: dict) -> list[int]:
    return [r["id"] for r in PollResult.objects.get(pk=result["poll_result_id"]).payload]


def received(message: dict) -> Message:
    """The message's row as a worker's claim leaves it."""
    claim = worker_claim(queue="data_polling", raw_body=json.dumps(message), sqs_message_id=message["id"])
    return Message.objects.get(pk=claim.pk)


def schedule(**fields) -> PollSchedule:
    return recurring_poll(**({"filters": {"status": "active"}} | fields))


# --- Filters and records --------------------------------------------------------------------------


def test_a_filter_keeps_the_matching_records(source):
    result = poll(source.serve("/feed", FEED), filters={"status": "active"})

    assert kept_ids(result) == [1, 3, 4]
    assert result["item_count"] == 3


def test_without_filters_every_record_is_kept(source):
    result = poll(source.serve("/feed", FEED))

    assert kept_ids(result) == [1, 2, 3, 4]


def test_filters_reach_into_nested_objects_and_compare_with_operators(source):
    result = poll(source.serve("/feed", FEED), filters={"owner.team": "blue", "score": {"gte": 10}})

    assert kept_ids(result) == [1, 2, 4]


@pytest.mark.parametrize("key", ["data", "items"])
def test_the_records_of_an_object_are_the_list_under_a_known_key(source, key):
    url = source.serve("/feed", {"page": 1, key: FEED})

    result = poll(url, filters={"status": "paused"})

    assert kept_ids(result) == [2]


def test_an_object_without_a_list_is_a_single_record(source):
    result = poll(
        source.serve("/price", {"id": 9, "status": "active", "price": 3.5}), filters={"status": "active"}
    )

    assert kept_ids(result) == [9]


def test_a_body_that_is_not_json_is_a_permanent_failure(source):
    url = source.serve("/page", b"<html>maintenance</html>")

    with pytest.raises(PermanentTaskError, match="did not answer with JSON"):
        poll(url)

    assert PollResult.objects.count() == 0


def test_an_unavailable_source_is_a_temporary_failure(source):
    url = source.serve("/feed", {"error": "down"}, status=503)

    with pytest.raises(TemporaryTaskError, match="HTTP 503"):
        poll(url)

    assert PollResult.objects.count() == 0


def test_an_invalid_filter_fails_permanently_before_anything_is_fetched(source):
    url = source.serve("/feed", FEED)

    with pytest.raises(PermanentTaskError, match="data.filters.score"):
        poll(url, filters={"score": {"bigger_than": 3}})

    assert source.hits == 0


# --- The stored result -------------------------------------------------------------------------------


def test_the_poll_result_is_stored_with_its_status_count_duration_and_payload(source):
    url = source.serve("/feed", FEED)
    message = polling_message(url, filters={"status": "paused"})
    record = received(message)

    result = poll(url, message=message, record=record)

    stored = PollResult.objects.get()
    assert result["poll_result_id"] == stored.pk
    assert (stored.source_url, stored.status_code, stored.item_count) == (url, 200, 1)
    assert stored.payload == [FEED[1]]
    assert stored.duration_ms > 0
    assert (stored.truncated, stored.excerpt) == (False, "")
    assert stored.message == record
    assert stored.schedule is None
    assert result["status_code"] == 200
    assert result["item_count"] == 1
    assert result["schedule_id"] is None


def test_a_payload_over_the_size_bound_is_stored_as_a_truncated_excerpt(source, settings):
    settings.POLL_RESULT_MAX_BYTES = 40

    poll(source.serve("/feed", FEED), filters={"status": "active"})

    stored = PollResult.objects.get()
    assert stored.truncated is True
    assert stored.payload is None
    assert stored.excerpt == json.dumps([FEED[0], FEED[2], FEED[3]])[:40]
    assert stored.item_count == 3


# --- Recurring polls ------------------------------------------------------------------------------------


def test_a_poll_interval_creates_a_schedule(source):
    url = source.serve("/feed", FEED)
    message = polling_message(url, filters={"status": "active"}, poll_interval=300)
    record = received(message)
    before = timezone.now()

    result = poll(url, message=message, record=record)

    created = PollSchedule.objects.get()
    assert result["schedule_id"] == created.pk
    assert created.origin == record
    assert (created.source_url, created.filters, created.interval_seconds) == (url, {"status": "active"}, 300)
    assert created.correlation_id == message["correlation_id"]
    # Its timing is a django-celery-beat periodic task, every 300 s, that beat runs.
    task = created.periodic_task
    assert created.active is True
    assert (task.interval.every, task.interval.period) == (300, "seconds")
    assert task.task == "tasks_app.tasks.send_scheduled_poll"
    assert json.loads(task.kwargs) == {"schedule_id": created.pk}
    assert before <= task.date_changed
    assert PollResult.objects.get().schedule == created


def test_polling_the_same_message_again_keeps_one_schedule(source):
    # A redelivered message, or a retry after the poll itself succeeded.
    url = source.serve("/feed", FEED)
    message = polling_message(url, poll_interval=300)
    record = received(message)

    first = poll(url, message=message, record=record)
    second = poll(url, message=message, record=record)

    assert PollSchedule.objects.count() == 1
    assert PeriodicTask.objects.filter(task="tasks_app.tasks.send_scheduled_poll").count() == 1
    assert first["schedule_id"] == second["schedule_id"]
    assert PollResult.objects.filter(schedule_id=first["schedule_id"]).count() == 2


def test_a_poll_without_an_interval_creates_no_schedule(source):
    url = source.serve("/feed", FEED)
    message = polling_message(url)

    poll(url, message=message, record=received(message))

    assert PollSchedule.objects.count() == 0


def test_a_scheduled_poll_is_recorded_under_its_schedule(source):
    url = source.serve("/feed", FEED)
    existing = schedule(source_url=url, last_poll_time=None)
    message = polling_message(url, filters={"status": "active"}) | {"schedule_id": existing.pk}

    result = poll(url, message=message)

    assert result["schedule_id"] == existing.pk
    assert PollSchedule.objects.count() == 1
    existing.refresh_from_db()
    assert existing.last_poll_time is not None
    assert PollResult.objects.get().schedule == existing


def test_a_data_polling_task_polls_and_returns_the_summary(source):
    url = source.serve("/feed", FEED)
    message = polling_message(url, filters={"status": "active"})
    delivery = {
        "queue": "data_polling",
        "sqs_message_id": message["id"],
        "receive_count": 1,
        "raw_body": json.dumps(message),
    }

    outcome = tasks.data_polling.apply(kwargs=delivery, task_id=message["id"])

    assert outcome.state == "SUCCESS"
    assert outcome.result["item_count"] == 3
    record = Message.objects.get(sqs_message_id=message["id"])
    assert outcome.result["poll_result_id"] == PollResult.objects.get(message=record).pk
    assert record.status == MessageStatus.SUCCEEDED


# --- The scheduler: django-celery-beat runs send_scheduled_poll -----------------------------------------


def test_a_scheduled_run_sends_one_valid_data_polling_message_keeping_the_correlation_id(boto_sqs):
    item = schedule(correlation_id="prices", last_poll_time=timezone.now())

    tasks.send_scheduled_poll.apply(kwargs={"schedule_id": item.pk})

    [sent] = drain(boto_sqs, "data_polling")
    body = json.loads(sent["Body"])
    assert body["source"] == "scheduler"
    assert body["queue"] == "data_polling"
    assert body["correlation_id"] == "prices"
    assert body["schedule_id"] == item.pk
    data = validated_task_data(body, task_type="data_polling")
    assert (data["source_url"], data["filters"]) == (item.source_url, {"status": "active"})
    assert (
        Message.objects.filter(queue="data_polling", source="scheduler", status=MessageStatus.SENT).count()
        == 1
    )


def test_a_run_for_a_schedule_that_no_longer_exists_sends_nothing(boto_sqs):
    tasks.send_scheduled_poll.apply(kwargs={"schedule_id": 999999})

    assert message_count(boto_sqs, "data_polling") == 0


def test_a_stopped_schedule_disables_its_periodic_task(sqs_untouched):
    item = schedule()

    poll_schedule_stop(schedule=item, via="command")

    item = PollSchedule.objects.select_related("periodic_task").get(pk=item.pk)
    assert item.active is False
    assert item.periodic_task.enabled is False
    assert item.stopped_at is not None
    assert item.next_poll_at is None


def test_stopping_a_stopped_schedule_keeps_when_it_was_stopped(sqs_untouched):
    item = schedule()
    poll_schedule_stop(schedule=item, via="command")
    stopped_at = PollSchedule.objects.get(pk=item.pk).stopped_at

    poll_schedule_stop(schedule=PollSchedule.objects.get(pk=item.pk), via="command")

    assert PollSchedule.objects.get(pk=item.pk).stopped_at == stopped_at


def test_a_stopped_poll_sends_nothing_even_if_its_periodic_task_is_enabled_again_by_hand(boto_sqs):
    item = schedule()
    poll_schedule_stop(schedule=item, via="command")
    PeriodicTask.objects.filter(pk=item.periodic_task_id).update(enabled=True)

    tasks.send_scheduled_poll.apply(kwargs={"schedule_id": item.pk})

    assert message_count(boto_sqs, "data_polling") == 0


def test_pausing_and_resuming_tell_beat_that_its_schedule_changed(sqs_untouched):
    item = schedule()
    PeriodicTasks.update_changed()
    before = PeriodicTasks.last_change()

    paused = poll_schedule_pause(schedule=item, via="command")
    after_pause = PeriodicTasks.last_change()
    resumed = poll_schedule_resume(schedule=paused, via="command")

    assert (paused.state, resumed.state) == ("paused", "active")
    assert before < after_pause < PeriodicTasks.last_change()
