"""The write order of sending and receiving (sqs_app.services), against the moto server.

A fresh id goes to SQS first and then into the history in two statements; an
id the caller chose is reserved first. Each failure in between must leave SQS
and the history consistent, and the history complete once the message is seen.
"""

import json
import uuid
from unittest import mock

import pytest
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext

from sqs_app import errors, services, sqs_client
from sqs_app.models import EventKind, Message, MessageEvent, MessageStatus
from tests.helpers import boto_queue_url, closed_endpoint, drain, message_count, worker_claim

pytestmark = pytest.mark.django_db

DOWN = OperationalError("server closed the connection unexpectedly")


def send(message=None, **kwargs):
    return services.message_send(queue="default", message=message or {"message": "hi"}, **kwargs)


def chosen(**message):
    """A message whose StandardMessage id the caller chose (a client that may retry)."""
    return {"id": str(uuid.uuid4()), "message": "chosen", **message}


def confirm_fails():
    """The database goes away after SQS accepted the message: the confirming UPDATE fails."""
    return mock.patch("django.db.models.query.QuerySet.update", side_effect=DOWN)


def database_down():
    """Every SQL statement fails, as when the database server has gone away."""
    return mock.patch("django.db.backends.utils.CursorWrapper.execute", side_effect=DOWN)


def statuses_when_sqs_is_asked():
    """Patch SQS's send so that it notes the history's statuses at the moment it is called."""
    seen = []
    real = sqs_client.send_message

    def send_and_look(**kwargs):
        seen.append(list(Message.objects.values_list("status", flat=True)))
        return real(**kwargs)

    return seen, mock.patch.object(sqs_client, "send_message", side_effect=send_and_look)


# --- Sending a fresh id ---------------------------------------------------------------------


def test_a_fresh_id_goes_to_sqs_before_anything_is_written(boto_sqs):
    seen, spy = statuses_when_sqs_is_asked()
    with spy:
        outgoing = send()

    assert seen == [[]]
    record = Message.objects.get()
    assert record.status == MessageStatus.SENT
    assert record.sqs_message_id == outgoing.message_id
    assert outgoing.record.pk == record.pk
    assert [e.kind for e in record.events.all()] == [EventKind.SENT]


# A fresh send's row and event: one statement on PostgreSQL (an INSERT in a WITH clause hands
# the row's id to the event's INSERT), two INSERTs on SQLite, which has no such statement.
FRESH_SEND_STATEMENTS = ["WITH"] if connection.vendor == "postgresql" else ["INSERT", "INSERT"]


def test_a_fresh_send_writes_its_row_and_event_without_a_transaction(boto_sqs, user):
    send()  # the queue URL and the boto3 client, as in a warm server
    with CaptureQueriesContext(connection) as queries:
        send(sent_by=user)

    # Inside the test's own transaction the write is wrapped in a savepoint (see the
    # transactional test below for the bare statements): the INSERTs and nothing else.
    statements = [q["sql"].split()[0] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert statements == FRESH_SEND_STATEMENTS


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_a_fresh_send_is_one_round_trip_on_postgresql(boto_sqs, user):
    send()
    with CaptureQueriesContext(connection) as queries:
        outgoing = send(sent_by=user)

    assert [q["sql"].split()[0] for q in queries.captured_queries] == FRESH_SEND_STATEMENTS
    record = Message.objects.get(pk=outgoing.record.pk)
    assert (record.status, record.sent_by, record.sqs_message_id) == ("sent", user, outgoing.message_id)
    event = record.events.get()
    assert (event.kind, event.actor, event.detail) == (
        "sent",
        user.username,
        {"sqs_message_id": outgoing.message_id},
    )


def test_a_fresh_sends_row_is_the_row_save_would_write(boto_sqs, user):
    """The prepared statement writes every column as Model.save() would, the model's defaults included."""
    outgoing = send({"message": "compare", "task_type": "user_action", "priority": "high"}, sent_by=user)
    written = Message.objects.get(pk=outgoing.record.pk)
    twin = services.OutgoingMessage(
        body={**outgoing.body, "id": str(uuid.uuid4())}, encoded_body="", attributes=outgoing.attributes
    )
    twin.message_id = "saved-by-the-orm"
    saved = services._history_row(twin, queue="default", sent_by=user, status="sent", sent_at=written.sent_at)
    saved.save()
    saved.refresh_from_db()

    differ = {"id", "standard_id", "sqs_message_id", "body", "created_at", "updated_at"}
    columns = [f.attname for f in Message._meta.concrete_fields if f.attname not in differ]
    assert len(columns) > 15  # every other column of the model, defaults included
    assert {c: getattr(written, c) for c in columns} == {c: getattr(saved, c) for c in columns}
    assert written.created_at is not None and written.updated_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_batch_of_fresh_ids_is_one_statement_or_one_transaction_for_all_ten(boto_sqs):
    batch = [
        services.outgoing_message(queue="default", message={"message": str(i)}, attributes={}, source="api")
        for i in range(10)
    ]
    send()
    with CaptureQueriesContext(connection) as queries:
        services.message_send_batch(queue="default", batch=batch)

    statements = [q["sql"].split()[0] for q in queries.captured_queries]
    # PostgreSQL: the rows and their events in one statement, atomic without a transaction.
    assert statements == (
        ["WITH"] if connection.vendor == "postgresql" else ["BEGIN", "INSERT", "INSERT", "COMMIT"]
    )
    assert Message.objects.filter(status=MessageStatus.SENT).count() == 11
    assert MessageEvent.objects.filter(kind=EventKind.SENT).count() == 11


def test_a_database_down_after_sqs_accepted_a_fresh_id_still_reports_the_send(boto_sqs, caplog):
    with database_down():
        outgoing = send({"message": "accepted by SQS"})

    assert outgoing.message_id
    assert outgoing.error is None
    assert message_count(boto_sqs) == 1
    assert Message.objects.count() == 0
    assert "could not be written" in caplog.text


def test_a_database_down_after_sqs_accepted_a_batch_still_reports_every_message_sent(boto_sqs, caplog):
    batch = [
        services.outgoing_message(queue="default", message={"message": str(i)}, attributes={}, source="api")
        for i in range(10)
    ]
    with database_down():
        services.message_send_batch(queue="default", batch=batch)

    assert all(m.message_id and m.error is None for m in batch)
    assert message_count(boto_sqs) == 10
    assert Message.objects.count() == 0  # nothing half-written: the rows and events are one write
    assert "could not be written" in caplog.text

    delivered = services.messages_receive(queue="default", max_messages=10)
    assert {d.message_id for d in delivered} <= {m.message_id for m in batch}
    assert Message.objects.filter(status=MessageStatus.RECEIVED).count() == len(delivered) > 0


def test_a_fresh_id_whose_history_failed_is_recorded_when_next_received(boto_sqs):
    with database_down():
        outgoing = send({"message": "accepted by SQS"})

    [delivered] = services.messages_receive(queue="default")

    record = Message.objects.get()
    assert delivered.record.pk == record.pk
    assert record.sqs_message_id == outgoing.message_id
    assert str(record.standard_id) == outgoing.body["id"]
    assert record.status == MessageStatus.RECEIVED
    assert [e.kind for e in record.events.all()] == [EventKind.RECEIVED]


def test_a_row_a_worker_made_first_is_completed_not_moved_backwards(boto_sqs, user):
    """The worker takes the message off the queue and finishes it before the API's insert lands."""
    real = sqs_client.send_message

    def sent_then_processed_at_once(**kwargs):
        message_id = real(**kwargs)
        record = services.message_record_received(
            queue="default", sqs_message_id=message_id, body=json.loads(kwargs["body"]), actor="worker"
        )
        Message.objects.filter(pk=record.pk).update(status=MessageStatus.SUCCEEDED)
        return message_id

    with mock.patch.object(sqs_client, "send_message", side_effect=sent_then_processed_at_once):
        outgoing = send(sent_by=user)

    record = Message.objects.get()
    assert outgoing.record.pk == record.pk
    assert record.status == MessageStatus.SUCCEEDED
    assert record.sent_by == user
    assert record.sqs_message_id == outgoing.message_id
    assert record.sent_at is not None
    # The `sent` event is dated when the send began, before the worker's receive.
    assert [e.kind for e in record.events.all()] == [EventKind.SENT, EventKind.RECEIVED]


@pytest.mark.django_db(transaction=True)
def test_a_batch_row_a_worker_made_first_keeps_its_status(boto_sqs, user):
    real = sqs_client.send_message_batch

    def sent_then_received_at_once(**kwargs):
        results = real(**kwargs)
        entry = next(e for e in kwargs["entries"] if e["Id"] == results[0].entry_id)
        services.message_record_received(
            queue="default",
            sqs_message_id=results[0].message_id,
            body=json.loads(entry["MessageBody"]),
            actor="worker",
        )
        return results

    batch = [
        services.outgoing_message(queue="default", message={"message": str(i)}, attributes={}, source="api")
        for i in range(3)
    ]
    with mock.patch.object(sqs_client, "send_message_batch", side_effect=sent_then_received_at_once):
        services.message_send_batch(queue="default", batch=batch, sent_by=user)

    assert Message.objects.count() == 3
    assert sorted(Message.objects.values_list("status", flat=True)) == ["received", "sent", "sent"]
    assert Message.objects.filter(sent_by=user).count() == 3
    raced = Message.objects.get(status=MessageStatus.RECEIVED)
    assert raced.pk in [m.record.pk for m in batch]
    assert [e.kind for e in raced.events.all()] == [EventKind.SENT, EventKind.RECEIVED]


@pytest.mark.django_db(transaction=True)
def test_a_failed_event_write_leaves_the_sent_row_and_reports_the_send(boto_sqs):
    # A caller's id: its row is reserved first, so the row and the event are two writes on
    # every database (a fresh id's are one statement on PostgreSQL, see above).
    with mock.patch.object(services, "_insert_sent_events", side_effect=DOWN):
        outgoing = send({"id": str(uuid.uuid4())})

    assert outgoing.message_id
    assert Message.objects.get().status == MessageStatus.SENT
    assert MessageEvent.objects.count() == 0


def test_a_failed_history_write_does_not_break_the_callers_transaction(boto_sqs, user):
    """The poll scheduler and the admin may send inside a transaction of their own."""
    # The event's write fails: after the row's on SQLite, in the same statement on PostgreSQL.
    with (
        mock.patch.object(services, "_insert_sent_events", side_effect=DOWN),
        mock.patch.object(services, "_insert_sent", side_effect=DOWN),
    ):
        outgoing = send()

    assert outgoing.message_id
    # The test runs inside a transaction: the failed write was rolled back to its
    # savepoint, whole, and the caller's transaction is still usable.
    assert Message.objects.count() == 0
    assert message_count(boto_sqs) == 1


def test_sqs_refusing_the_send_leaves_no_history_row(boto_sqs):
    boto_sqs.delete_queue(QueueUrl=boto_queue_url(boto_sqs))

    with pytest.raises(errors.QueueNotProvisioned):
        send()

    assert Message.objects.count() == 0
    assert MessageEvent.objects.count() == 0


def test_sqs_refusing_a_batch_leaves_no_history_rows(boto_sqs):
    batch = [
        services.outgoing_message(queue="default", message=message, attributes={}, source="api")
        for message in ({"message": "fresh"}, chosen(), {"message": "fresh too"})
    ]
    boto_sqs.delete_queue(QueueUrl=boto_queue_url(boto_sqs))

    with pytest.raises(errors.QueueNotProvisioned):
        services.message_send_batch(queue="default", batch=batch)

    assert Message.objects.count() == 0


def test_sqs_unreachable_leaves_no_history_row(sqs, settings):
    settings.AWS_ENDPOINT_URL_SQS = closed_endpoint()
    settings.SQS_CONNECT_TIMEOUT_SECONDS = 0.5
    sqs_client.reset()

    with pytest.raises(errors.SQSUnavailable):
        send(chosen())

    assert Message.objects.count() == 0


# --- Sending an id the caller chose -------------------------------------------------------------


def test_a_chosen_id_is_reserved_pending_before_sqs_is_asked(boto_sqs):
    seen, spy = statuses_when_sqs_is_asked()
    with spy:
        outgoing = send(chosen())

    assert seen == [[MessageStatus.PENDING]]
    assert Message.objects.get().status == MessageStatus.SENT
    assert outgoing.record.sqs_message_id == outgoing.message_id


def test_a_database_down_before_sending_a_chosen_id_refuses_it_and_nothing_reaches_sqs(boto_sqs):
    with database_down(), pytest.raises(errors.DatabaseUnavailable) as caught:
        send(chosen())

    assert caught.value.status_code == 503
    assert message_count(boto_sqs) == 0
    assert Message.objects.count() == 0


def test_a_database_failure_at_the_confirm_step_still_reports_the_send(boto_sqs):
    with confirm_fails():
        outgoing = send(chosen(message="accepted by SQS"))

    assert outgoing.message_id
    assert outgoing.error is None
    assert message_count(boto_sqs) == 1
    record = Message.objects.get()
    assert record.status == MessageStatus.PENDING
    assert record.sqs_message_id is None
    assert str(record.standard_id) == outgoing.body["id"]
    assert MessageEvent.objects.count() == 0


def test_a_later_receive_settles_the_pending_row_by_its_standard_message_id(boto_sqs):
    with confirm_fails():
        outgoing = send(chosen(message="accepted by SQS"))

    [delivered] = services.messages_receive(queue="default")

    assert delivered.message_id == outgoing.message_id
    record = Message.objects.get()
    assert delivered.record.pk == record.pk
    assert record.status == MessageStatus.RECEIVED
    assert record.sqs_message_id == outgoing.message_id
    assert [e.kind for e in record.events.all()] == [EventKind.RECEIVED]


def test_resending_the_same_id_is_not_sent_twice(boto_sqs, user):
    message = chosen(message="once")
    first = send(message, sent_by=user)

    with mock.patch.object(sqs_client, "send_message", wraps=sqs_client.send_message) as sqs_send:
        second = send(dict(message), sent_by=user)

    assert not sqs_send.called
    assert second.duplicate
    assert second.message_id == first.message_id
    assert second.body == first.body
    assert [json.loads(m["Body"])["id"] for m in drain(boto_sqs)] == [message["id"]]
    assert Message.objects.count() == 1
    assert [e.kind for e in Message.objects.get().events.all()] == [EventKind.SENT]


def test_resending_an_id_a_batch_sent_fresh_is_not_sent_twice(boto_sqs):
    """A batch answers with each message's id: a client may retry with it."""
    [outgoing] = services.message_send_batch(
        queue="default",
        batch=[services.outgoing_message(queue="default", message={"m": 1}, attributes={}, source="api")],
    )

    again = send({"id": outgoing.body["id"], "m": 1})

    assert again.duplicate
    assert again.message_id == outgoing.message_id
    assert message_count(boto_sqs) == 1


def test_the_same_id_may_be_sent_to_another_queue(boto_sqs):
    message_id = str(uuid.uuid4())

    services.message_send(queue="default", message={"id": message_id})
    services.message_send(queue="notifications", message={"id": message_id, "message": "x"})

    assert Message.objects.count() == 2
    assert message_count(boto_sqs, "notifications") == 1


def test_a_row_left_pending_by_a_crash_before_sending_is_sent_on_retry(boto_sqs):
    message = chosen(message="retry me")
    with (
        mock.patch.object(sqs_client, "send_message", side_effect=SystemExit),
        pytest.raises(SystemExit),
    ):
        send(message)
    assert Message.objects.get().status == MessageStatus.PENDING

    outgoing = send(dict(message))

    assert not outgoing.duplicate
    assert Message.objects.get().status == MessageStatus.SENT
    assert message_count(boto_sqs) == 1


def test_a_batch_mixing_fresh_and_chosen_ids_records_each_once(boto_sqs, user):
    repeat = chosen()
    send(dict(repeat), sent_by=user)
    batch = [
        services.outgoing_message(queue="default", message=message, attributes={}, source="api")
        for message in ({"message": "fresh"}, chosen(), dict(repeat))
    ]

    services.message_send_batch(queue="default", batch=batch, sent_by=user)

    assert [m.duplicate for m in batch] == [False, False, True]
    assert message_count(boto_sqs) == 3
    assert Message.objects.filter(status=MessageStatus.SENT, sent_by=user).count() == 3
    assert MessageEvent.objects.filter(kind=EventKind.SENT).count() == 3


def test_two_ids_alike_in_one_batch_are_refused(sqs):
    message_id = str(uuid.uuid4())
    batch = [
        services.outgoing_message(queue="default", message={"id": message_id}, attributes={}, source="api")
        for _ in range(2)
    ]

    with pytest.raises(errors.ValidationFailed):
        services.message_send_batch(queue="default", batch=batch)

    assert Message.objects.count() == 0


def test_sending_to_an_unknown_queue_touches_nothing(sqs_untouched):
    with pytest.raises(errors.QueueNotFound):
        services.message_send(queue="nope", message={"message": "hi"})

    assert Message.objects.count() == 0


# --- Receiving and deleting -------------------------------------------------------------------


def test_a_receive_that_cannot_be_recorded_returns_the_messages_to_the_queue(boto_sqs):
    send({"message": "a"})
    send({"message": "b"})

    with (
        mock.patch.object(MessageEvent.objects, "create", side_effect=DOWN),
        pytest.raises(errors.DatabaseUnavailable) as caught,
    ):
        services.messages_receive(queue="default", max_messages=10, visibility_timeout=600)

    assert "returned to the queue" in caught.value.message
    # Visible again at once, although the receive asked to hide them for ten minutes.
    assert sorted(json.loads(m["Body"])["message"] for m in drain(boto_sqs)) == ["a", "b"]
    assert set(Message.objects.values_list("status", flat=True)) == {MessageStatus.SENT}
    assert not MessageEvent.objects.filter(kind=EventKind.RECEIVED).exists()


def test_a_second_delivery_updates_the_same_row(sqs):
    outgoing = send()

    services.messages_receive(queue="default", visibility_timeout=0)
    services.messages_receive(queue="default", visibility_timeout=0)

    record = Message.objects.get()
    assert record.sqs_message_id == outgoing.message_id
    assert record.receive_count == 2
    assert [e.kind for e in record.events.all()] == [EventKind.SENT, EventKind.RECEIVED, EventKind.RECEIVED]


def test_a_delete_that_cannot_be_recorded_still_deletes_from_sqs(boto_sqs):
    send()
    [delivered] = services.messages_receive(queue="default")

    with mock.patch.object(MessageEvent.objects, "create", side_effect=DOWN):
        result = services.message_delete(queue="default", receipt_handle=delivered.receipt_handle)

    assert result is None
    assert message_count(boto_sqs) == 0
    assert Message.objects.get().status == MessageStatus.RECEIVED


def test_a_delete_sqs_refuses_records_nothing(boto_sqs):
    send()
    services.messages_receive(queue="default")

    with pytest.raises(errors.InvalidReceiptHandle):
        services.message_delete(queue="default", receipt_handle="forged")

    assert Message.objects.get().status == MessageStatus.RECEIVED
    assert message_count(boto_sqs) == 1


def test_an_empty_receipt_handle_is_refused_before_sqs(sqs_untouched):
    with pytest.raises(errors.InvalidReceiptHandle):
        services.message_delete(queue="default", receipt_handle="")


def test_a_worker_that_takes_the_message_before_the_confirm_is_not_overwritten(sqs, boto_sqs):
    real = sqs_client.send_message

    def send_and_receive_at_once(**kwargs):
        # A fast worker: the message is received before the API records `sent`.
        message_id = real(**kwargs)
        worker_claim(queue="default", raw_body=kwargs["body"], sqs_message_id=message_id)
        return message_id

    with mock.patch.object(sqs_client, "send_message", side_effect=send_and_receive_at_once):
        sent = send()

    record = Message.objects.get()
    assert record.status == MessageStatus.PROCESSING
    assert record.sqs_message_id == sent.message_id
    assert list(record.events.values_list("kind", flat=True)) == [EventKind.SENT]
