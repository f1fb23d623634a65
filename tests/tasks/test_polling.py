"""The data-polling family: poll a real local HTTP server, filter, store, and recur."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from sqs_app.models import Message, MessageStatus
from sqs_app.schemas import build_standard_message
from tasks_app import lifecycle, tasks
from tasks_app.errors import PermanentTaskError, TemporaryTaskError
from tasks_app.families import validated_task_data
from tasks_app.models import PollResult, PollSchedule
from tasks_app.polling import enqueue_due_polls, poll_schedule_stop, poll_source
from tests.helpers import drain, make_sqs_unreachable, message_count

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
        message=message, data=validated_task_data(message, task_type="data_polling"), record=record
    )


def kept_ids(result: dict) -> list[int]:
    return [r["id"] for r in PollResult.objects.get(pk=result["poll_result_id"]).payload]


def received(message: dict) -> Message:
    return lifecycle.message_receive(
        queue="data_polling", sqs_message_id=message["id"], raw_body=json.dumps(message)
    )


def schedule(**fields) -> PollSchedule:
    defaults = {
        "source_url": "https://example.com/feed.json",
        "filters": {"status": "active"},
        "interval_seconds": 60,
        "next_poll_at": timezone.now() - timedelta(seconds=1),
    }
    return PollSchedule.objects.create(**(defaults | fields))


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
    assert created.active is True
    assert before + timedelta(seconds=300) <= created.next_poll_at <= timezone.now() + timedelta(seconds=300)
    assert PollResult.objects.get().schedule == created


def test_polling_the_same_message_again_keeps_one_schedule(source):
    # A redelivered message, or a retry after the poll itself succeeded.
    url = source.serve("/feed", FEED)
    message = polling_message(url, poll_interval=300)
    record = received(message)

    first = poll(url, message=message, record=record)
    second = poll(url, message=message, record=record)

    assert PollSchedule.objects.count() == 1
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
    record = received(polling_message(url, filters={"status": "active"}))

    outcome = tasks.data_polling.apply(args=[record.pk])

    assert outcome.state == "SUCCESS"
    assert outcome.result["item_count"] == 3
    assert outcome.result["poll_result_id"] == PollResult.objects.get(message=record).pk
    record.refresh_from_db()
    assert record.status == MessageStatus.SUCCEEDED


# --- The scheduler ------------------------------------------------------------------------------------------


def test_due_polls_are_sent_once_each_to_the_data_polling_queue(boto_sqs):
    now = timezone.now()
    due = [schedule(interval_seconds=60), schedule(interval_seconds=120, correlation_id="prices")]
    inactive = schedule(active=False)
    not_yet = schedule(next_poll_at=now + timedelta(minutes=5))

    sent = enqueue_due_polls(now=now)

    assert sent == 2
    bodies = [json.loads(m["Body"]) for m in drain(boto_sqs, "data_polling")]
    assert sorted(b["schedule_id"] for b in bodies) == sorted(s.pk for s in due)
    for body in bodies:
        assert body["source"] == "scheduler"
        assert body["queue"] == "data_polling"
        assert body["task_type"] == "data_polling"
        assert body["data"]["source_url"] == "https://example.com/feed.json"
        assert body["data"]["filters"] == {"status": "active"}
    for item in due:
        item.refresh_from_db()
        assert item.next_poll_at == now + timedelta(seconds=item.interval_seconds)
    for item in (inactive, not_yet):
        before = item.next_poll_at
        item.refresh_from_db()
        assert item.next_poll_at == before
    assert (
        Message.objects.filter(queue="data_polling", source="scheduler", status=MessageStatus.SENT).count()
        == 2
    )


def test_a_scheduled_message_is_a_valid_data_polling_message_keeping_the_correlation_id(boto_sqs):
    item = schedule(correlation_id="prices", last_poll_time=timezone.now())

    enqueue_due_polls()

    [sent] = drain(boto_sqs, "data_polling")
    body = json.loads(sent["Body"])
    assert body["correlation_id"] == "prices"
    assert body["schedule_id"] == item.pk
    data = validated_task_data(body, task_type="data_polling")
    assert data["source_url"] == item.source_url


def test_a_second_tick_right_after_the_first_sends_nothing(boto_sqs):
    schedule()
    now = timezone.now()
    assert enqueue_due_polls(now=now) == 1

    assert enqueue_due_polls(now=now) == 0

    assert message_count(boto_sqs, "data_polling") == 1


def test_a_send_that_fails_skips_one_interval_rather_than_doubling_one(sqs, settings):
    item = schedule()
    now = timezone.now()
    make_sqs_unreachable(settings)

    assert enqueue_due_polls(now=now) == 0

    item.refresh_from_db()
    assert item.next_poll_at == now + timedelta(seconds=60)


def test_a_stopped_schedule_is_inactive_and_no_longer_polled(boto_sqs):
    item = schedule()

    poll_schedule_stop(schedule=item)

    item.refresh_from_db()
    assert item.active is False
    assert item.stopped_at is not None
    assert enqueue_due_polls() == 0
    assert message_count(boto_sqs, "data_polling") == 0


def test_stopping_a_stopped_schedule_keeps_when_it_was_stopped():
    item = schedule()
    poll_schedule_stop(schedule=item)
    stopped_at = PollSchedule.objects.get(pk=item.pk).stopped_at

    poll_schedule_stop(schedule=PollSchedule.objects.get(pk=item.pk))

    assert PollSchedule.objects.get(pk=item.pk).stopped_at == stopped_at
