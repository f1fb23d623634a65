"""sqs_setup, sqs_queues (and its old name sqs_status), sqs_purge, against the moto server."""

import functools
from datetime import timedelta

import pytest
from django.utils import timezone

from sqs_app.models import AuditEntry, Message
from sqs_app.services import message_send
from tasks_app.consumers import consumers_record
from tests.helpers import message_count

from .conftest import dead_lettered

pytestmark = pytest.mark.django_db

QUEUES = ["default", "data_polling", "task_processing", "notifications", "celery"]


def test_setup_creates_every_queue_and_says_so(command, sqs):
    result = command("sqs_setup", "--json", "--operator", "carol")

    assert result.code == 0
    assert [row["queue"] for row in result.json] == QUEUES
    assert all(row["dlq_url"].endswith("-dlq") for row in result.json)
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.via, entry.actor) == ("setup", "command", "carol")


def test_queues_shows_depths_dead_letters_and_the_oldest_open_message_age(command, sqs):
    message_send(queue="default", message={"message": "one"})
    message_send(queue="default", message={"message": "two"})
    Message.objects.filter(queue="default").update(created_at=timezone.now() - timedelta(seconds=300))
    dead_lettered("failed-once")

    result = command("sqs_queues", "--json")

    assert result.code == 0
    rows = {row["name"]: row for row in result.json}
    assert list(rows) == QUEUES
    assert rows["default"] | {"oldest_age_seconds": None} == {
        "name": "default",
        "visible": 2,
        "in_flight": 0,
        "delayed": 0,
        "retrying": 0,
        "dead": 0,
        "oldest_age_seconds": None,
        "consumers": None,  # no worker consumes it
    }
    assert 300 <= rows["default"]["oldest_age_seconds"] < 400
    assert rows["notifications"]["dead"] == 1
    # Failed: no longer open, so it does not make the queue look stuck.
    assert rows["notifications"]["oldest_age_seconds"] is None
    assert rows["celery"]["oldest_age_seconds"] is None


def test_queues_prints_a_table_with_one_row_per_queue(command, sqs):
    message_send(queue="task_processing", message={"message": "one"})

    result = command("sqs_queues")

    lines = result.out.splitlines()
    assert lines[0].split() == [
        "queue", "visible", "in", "flight", "delayed", "retrying", "dead", "oldest", "age", "(s)",
        "consumers", "last", "poll", "(s)",
    ]  # fmt: skip
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert list(rows) == QUEUES
    assert rows["task_processing"][:4] == ["1", "0", "0", "0"]
    assert rows["default"] == ["0", "0", "0", "0", "0", "-", "-", "-"]
    assert rows["celery"][3] == "-"  # no history: no retrying count


def test_queues_shows_each_queues_consumers_and_flags_those_that_stopped_polling(command, sqs, settings):
    settings.WIPSIE_WORKER_STALL_SECONDS = 60
    now = timezone.now()
    record = functools.partial(consumers_record, started_at=now - timedelta(hours=1))
    record(hostname="worker-a", pid=10, last_polls={"notifications": now - timedelta(seconds=2)})
    record(hostname="worker-b", pid=11, last_polls={"notifications": now - timedelta(seconds=600)})
    record(hostname="worker-c", pid=12, last_polls={"task_processing": now - timedelta(seconds=300)})

    rows = {row["name"]: row for row in command("sqs_queues", "--json").json}
    table = command("sqs_queues").out

    notifications = rows["notifications"]["consumers"]
    assert notifications["status"] == "ok"  # one of its two consumers still polls
    assert 2 <= notifications["last_poll_age_seconds"] < 30
    assert [(p["hostname"], p["pid"], p["stalled"]) for p in notifications["processes"]] == [
        ("worker-a", 10, False),
        ("worker-b", 11, True),
    ]
    assert rows["task_processing"]["consumers"]["status"] == "stalled"
    assert rows["default"]["consumers"] is None
    cells = {line.split()[0]: line.split()[7:] for line in table.splitlines()[1:6]}
    assert cells["notifications"][0] == "2"
    assert cells["task_processing"][:2] == ["STALLED", "(1)"]
    assert "task_processing: worker-c pid 12 last polled 300 s ago" in table
    assert "notifications: worker-b pid 11 last polled 600 s ago" in table


def test_status_is_the_old_name_of_queues(command, sqs):
    assert command("sqs_status", "--json").json == command("sqs_queues", "--json").json


def test_purge_with_yes_empties_the_queue_and_is_audited(command, boto_sqs):
    for n in range(3):
        message_send(queue="default", message={"message": f"m{n}"})

    result = command("sqs_purge", "default", "--yes", "--json", "--operator", "carol")

    assert result.code == 0
    assert result.json == {"queue": "default", "dead_letters": False, "purged_about": 3}
    assert message_count(boto_sqs, "default") == 0
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.queue, entry.count, entry.actor) == ("purge", "default", 3, "carol")


def test_purge_asks_for_the_queue_name_and_purges_when_it_is_typed(command, boto_sqs):
    message_send(queue="default", message={"message": "m"})

    result = command("sqs_purge", "default", stdin="default\n")

    assert result.code == 0
    assert "Purge default (1 visible, 0 in flight)? Type the queue name to confirm" in result.err
    assert message_count(boto_sqs, "default") == 0


def test_purge_answered_with_anything_else_purges_nothing_and_exits_1(command, boto_sqs):
    message_send(queue="default", message={"message": "m"})

    result = command("sqs_purge", "default", stdin="y\n")

    assert result.code == 1
    assert result.err == "Not purged: the answer was not 'default'."
    assert message_count(boto_sqs, "default") == 1
    assert not AuditEntry.objects.exists()


def test_purge_of_a_dlq_leaves_the_queue_alone(command, boto_sqs):
    dead_lettered("gone")
    message_send(queue="notifications", message={"message": "kept"})

    result = command("sqs_purge", "notifications", "--dlq", "--yes")

    assert result.code == 0
    assert "Purged notifications dead-letter queue: about 1 message(s)" in result.out
    assert message_count(boto_sqs, "notifications") == 1


def test_a_table_piped_into_another_program_never_wraps_its_rows(command, sqs, monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")  # what a narrow terminal, or pytest-xdist, says

    lines = command("sqs_queues").out.splitlines()

    assert lines[0].split()[:2] == ["queue", "visible"]
    assert [line.split()[0] for line in lines[1:6]] == QUEUES
