"""inserts.prepared_insert: defaults worked out once, and never one that changes per row."""

import pytest
from django.db import connection
from django.utils import timezone

from sqs_app.inserts import prepared_insert
from sqs_app.models import Message, MessageEvent

pytestmark = pytest.mark.django_db


def test_a_field_whose_default_changes_per_row_must_be_given():
    # MessageEvent.at defaults to timezone.now: a value prepared once would date every event alike.
    with pytest.raises(ValueError, match=r"MessageEvent\.at changes per row"):
        prepared_insert(MessageEvent, [{"message_id": 1, "kind": "sent"}])
    with pytest.raises(ValueError, match=r"Message\.created_at changes per row"):
        prepared_insert(Message, [{"queue": "default", "body": {}, "updated_at": timezone.now()}])


def test_an_unknown_field_is_refused():
    with pytest.raises(ValueError, match="no fields"):
        prepared_insert(
            MessageEvent, [{"message_id": 1, "kind": "sent", "at": timezone.now(), "colour": "red"}]
        )


def test_the_row_gets_the_given_values_and_the_models_defaults():
    now = timezone.now()
    sql, params = prepared_insert(
        Message,
        [
            {"queue": queue, "body": {"a": n}, "created_at": now, "updated_at": now}
            for n, queue in enumerate("ab")
        ],
        returning=("id", "queue"),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        returned = cursor.fetchall()

    rows = [Message.objects.get(pk=pk) for pk, _ in returned]
    assert [(row.queue, row.body, row.created_at) for row in rows] == [
        ("a", {"a": 0}, now),
        ("b", {"a": 1}, now),
    ]
    assert [queue for _, queue in returned] == ["a", "b"]
    # Defaults, prepared once: the same as a row saved through the ORM gets.
    for row in rows:
        assert (row.attributes, row.status, row.receive_count, row.last_error) == ({}, "pending", 0, "")
