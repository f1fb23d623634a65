"""sqs_replay (from the history) and sqs_redrive (from the DLQ), against the moto server."""

import json

import pytest

from sqs_app import operations, sqs_client
from sqs_app.models import AuditEntry, EventKind, Message, MessageStatus
from sqs_app.operations import dead_letters
from sqs_app.queues import queue_spec
from sqs_app.services import message_send
from tests.helpers import drain

from .conftest import dead_lettered

pytestmark = pytest.mark.django_db


def dlq_messages(boto_sqs, queue: str = "notifications") -> list[dict]:
    url = boto_sqs.get_queue_url(QueueName=queue_spec(queue).dlq_name)["QueueUrl"]
    return boto_sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60).get(
        "Messages", []
    )


# --- sqs_redrive -------------------------------------------------------------------------------


def test_redrive_replays_every_dead_letter_once_and_audits_it(command, boto_sqs):
    first, second = dead_lettered("first"), dead_lettered("second")

    result = command("sqs_redrive", "notifications", "--json", "--operator", "carol")

    assert result.code == 0
    report = result.json
    assert report["dlq_depth_at_start"] == 2 and report["stopped"] == ""
    on_queue = drain(boto_sqs, "notifications")
    assert sorted(json.loads(m["Body"])["id"] for m in on_queue) == sorted(
        str(r.standard_id) for r in (first, second)
    )
    assert {r["message_id"] for r in report["replayed"]} == {m["MessageId"] for m in on_queue}
    assert dlq_messages(boto_sqs) == []
    record = Message.objects.get(pk=first.pk)
    assert record.status == MessageStatus.SENT
    assert record.events.last().kind == EventKind.REPLAYED
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.count) == ("redrive", "carol", 2)


def test_redrive_prints_a_table_and_a_summary(command, boto_sqs):
    dead_lettered("first")

    result = command("sqs_redrive", "notifications")

    assert result.out.splitlines()[-1] == "Replayed 1 message(s) onto notifications."


def dlq_peek(boto_sqs, queue: str = "notifications") -> list[dict]:
    """The DLQ's messages, left visible (visibility timeout 0)."""
    url = boto_sqs.get_queue_url(QueueName=queue_spec(queue).dlq_name)["QueueUrl"]
    return boto_sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
        "Messages", []
    )


def test_a_message_that_fails_again_during_the_run_is_not_replayed_twice(boto_sqs):
    poison, other = dead_lettered("poison"), dead_lettered("other")
    [poison_body] = [
        m["Body"] for m in dlq_peek(boto_sqs) if json.loads(m["Body"])["id"] == str(poison.standard_id)
    ]
    failed_again = []

    def poison_fails_again(done: int) -> None:
        # A worker takes the replayed poison message and dead-letters it again, mid-run.
        if not failed_again:
            dlq = sqs_client.dlq_url("notifications")
            failed_again.append(sqs_client.send_message(queue="notifications", body=poison_body, url=dlq))

    report = operations.dlq_redrive_run(queue="notifications", progress=poison_fails_again)

    assert report.dlq_depth_at_start == 2
    replayed_ids = sorted(r["id"] for r in report.replayed)
    assert replayed_ids == sorted([str(poison.standard_id), str(other.standard_id)])
    assert [m["MessageId"] for m in dlq_messages(boto_sqs)] == failed_again


def test_redrive_stops_at_a_dead_letter_it_already_replayed_in_this_run(boto_sqs):
    """The same StandardMessage id met again (under a new SQS id) ends the run and stays in the DLQ."""
    poison = dead_lettered("poison")
    [dlq_copy] = dlq_peek(boto_sqs)
    # Two copies of the same message on the DLQ: as if it failed again right away.
    sqs_client.send_message(
        queue="notifications", body=dlq_copy["Body"], url=sqs_client.dlq_url("notifications")
    )

    report = operations.dlq_redrive_run(queue="notifications")

    assert [r["id"] for r in report.replayed] == [str(poison.standard_id)]
    assert report.stopped == "a message replayed in this run failed again and is back in the DLQ"
    assert len(drain(boto_sqs, "notifications")) == 1
    assert len(dlq_messages(boto_sqs)) == 1


def test_redrive_limit_bounds_the_run(command, boto_sqs):
    for n in range(3):
        dead_lettered(f"m{n}")

    result = command("sqs_redrive", "notifications", "--limit", "2", "--json")

    assert len(result.json["replayed"]) == 2
    assert len(drain(boto_sqs, "notifications")) == 2
    assert len(dlq_messages(boto_sqs)) == 1


def test_redrive_dry_run_lists_and_leaves_the_dead_letters_where_they_are(command, boto_sqs):
    poison = dead_lettered("poison")

    result = command("sqs_redrive", "notifications", "--dry-run", "--json")

    assert [r["id"] for r in result.json["replayed"]] == [str(poison.standard_id)]
    assert result.json["replayed"][0]["message_id"] is None
    assert drain(boto_sqs, "notifications") == []
    assert len(dlq_peek(boto_sqs)) == 1
    assert Message.objects.get(pk=poison.pk).status == MessageStatus.FAILED
    assert command("sqs_redrive", "notifications", "--dry-run").out.splitlines()[-1] == (
        "Would replay 1 message(s) onto notifications."
    )


def test_redrive_rate_spaces_the_sends(boto_sqs, monkeypatch):
    clock = {"now": 1000.0}
    sleeps = []
    monkeypatch.setattr(dead_letters.time, "monotonic", lambda: clock["now"])
    monkeypatch.setattr(
        dead_letters.time, "sleep", lambda s: sleeps.append(s) or clock.update(now=clock["now"] + s)
    )
    for n in range(3):
        dead_lettered(f"m{n}")

    report = operations.dlq_redrive_run(queue="notifications", rate=2)

    assert len(report.replayed) == 3
    assert sleeps == [0.5, 0.5]


def test_redrive_of_a_message_without_an_id_settles_its_own_row(command, boto_sqs):
    """Another producer's body: the replay resets its failed row instead of starting a new one."""
    record = Message.objects.create(
        queue="notifications", sqs_message_id="foreign-1", body="plain text", status=MessageStatus.FAILED
    )
    sqs_client.send_message(queue="notifications", body="plain text", url=sqs_client.dlq_url("notifications"))

    result = command("sqs_redrive", "notifications", "--json")

    [replayed] = result.json["replayed"]
    record.refresh_from_db()
    assert record.status == MessageStatus.SENT
    assert record.sqs_message_id == replayed["message_id"]
    assert Message.objects.count() == 1


def test_redrive_with_an_id_replays_only_that_message(command, boto_sqs):
    chosen, other = dead_lettered("chosen"), dead_lettered("other")

    result = command("sqs_redrive", "notifications", "--id", str(chosen.standard_id))

    assert result.code == 0
    [on_queue] = drain(boto_sqs, "notifications")
    assert json.loads(on_queue["Body"])["id"] == str(chosen.standard_id)
    assert Message.objects.get(pk=other.pk).status == MessageStatus.FAILED


def test_redrive_of_an_id_not_in_the_dlq_exits_1(command, boto_sqs):
    dead_lettered("kept")

    result = command("sqs_redrive", "notifications", "--id", "0b3a1f4e-0000-4000-8000-000000000000")

    assert result.code == 1
    assert result.err == "Only 0 of 1 requested message(s) were in the DLQ."


def test_redrive_of_celerys_own_dlq(command, boto_sqs):
    sqs_client.send_message(queue="celery", body="a celery task", url=sqs_client.dlq_url("celery"))

    result = command("sqs_redrive", "celery", "--json")

    assert result.code == 0 and len(result.json["replayed"]) == 1
    url = boto_sqs.get_queue_url(QueueName="wipsie-celery")["QueueUrl"]
    [message] = boto_sqs.receive_message(QueueUrl=url)["Messages"]
    assert message["Body"] == "a celery task"


def test_redrive_of_celerys_own_dlq_by_id_is_bad_usage(command, sqs_untouched):
    result = command("sqs_redrive", "celery", "--id", "abc")

    assert result.code == 2
    assert result.err == "--id picks recorded messages; Celery's own queue has none: redrive it whole."


# --- sqs_replay -----------------------------------------------------------------------------


def test_replay_by_id_sends_a_new_message_linked_to_its_original(command, boto_sqs):
    original = dead_lettered("again")

    result = command("sqs_replay", str(original.standard_id), "--json", "--operator", "carol")

    assert result.code == 0
    [replayed] = result.json["replayed"]
    assert replayed["original"] == str(original.standard_id) and replayed["id"] != str(original.standard_id)
    [on_queue] = drain(boto_sqs, "notifications")
    body = json.loads(on_queue["Body"])
    assert body["replay_of"] == str(original.standard_id)
    assert body["source"] == "manual"
    assert body["correlation_id"] == original.body["correlation_id"]
    assert "last_error" not in body and "retry_count" not in body
    original.refresh_from_db()
    assert original.status == MessageStatus.FAILED  # the original keeps its history
    event = original.events.last()
    assert (event.kind, event.actor) == (EventKind.REPLAYED, "carol")
    assert event.detail["replay_message_id"] == on_queue["MessageId"]
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.message_ids) == ("replay", [on_queue["MessageId"]])


def test_replay_by_filter_and_to_another_queue(command, boto_sqs):
    dead_lettered("one")
    dead_lettered("two")
    message_send(queue="notifications", message={"message": "not failed"})

    result = command("sqs_replay", "--queue", "notifications", "--status", "failed", "--since", "1h",
                     "--to-queue", "default", "--json")  # fmt: skip

    assert result.code == 0
    assert len(result.json["replayed"]) == 2
    assert {r["queue"] for r in result.json["replayed"]} == {"default"}
    assert len(drain(boto_sqs, "default")) == 2


def test_replay_limit(command, boto_sqs):
    for n in range(3):
        dead_lettered(f"m{n}")

    result = command("sqs_replay", "--status", "failed", "--limit", "2", "--json")

    assert len(result.json["replayed"]) == 2


def test_replay_of_a_body_that_is_not_an_object_is_skipped_and_exits_1(command, boto_sqs):
    record = Message.objects.create(queue="default", sqs_message_id="foreign", body="plain", status="failed")

    result = command("sqs_replay", record.sqs_message_id)

    assert result.code == 1
    assert "skipped foreign: Its body is not a JSON object" in result.out
    assert result.err == "1 skipped and 0 failed of 1."


def test_replay_of_an_unknown_id_exits_1(command, sqs):
    result = command("sqs_replay", "no-such-id")

    assert result.code == 1
    assert result.err.startswith("MESSAGE_NOT_FOUND:")


def test_replay_needs_ids_or_a_filter(command, sqs_untouched):
    assert command("sqs_replay").code == 2
    assert command("sqs_replay", "abc", "--queue", "default").code == 2
