"""schemas.validated: one serializer per thread and class, the same answers as a new one per call."""

import threading

import pytest
from rest_framework import serializers

from sqs_app.api.serializers import SendRequestSerializer
from sqs_app.schemas import validated

GOOD = {"queue_name": "default", "message": {"task_type": "user_action", "message": "hello"}}
BAD = [
    {"queue_name": "default", "message": {"priority": "urgent", "retry_count": -1}},
    {"queue_name": "default", "message": {"task_type": "notification", "data": {"notification_type": "fax"}}},
    {"queue_name": "default", "message": "not an object"},
    {"message": {}},
]


def as_new_serializer(data):
    serializer = SendRequestSerializer(data=data)
    serializer.is_valid()
    return serializer.errors or dict(serializer.validated_data)


def as_validated(data):
    try:
        return dict(validated(SendRequestSerializer, data))
    except serializers.ValidationError as exc:
        return exc.detail


@pytest.mark.parametrize("data", [GOOD, *BAD])
def test_the_same_answer_as_a_new_serializer(data):
    assert as_validated(data) == as_new_serializer(data)


def test_an_error_leaves_nothing_behind_for_the_next_call():
    for bad in BAD:
        assert isinstance(as_validated(bad), dict)
        assert as_validated(GOOD)["message"]["message"] == "hello"


def test_threads_validating_at_once_each_get_their_own_answers():
    wrong = []

    def validate_many(n: int) -> None:
        for i in range(200):
            text = f"thread {n} message {i}"
            data = {"queue_name": "default", "message": {"message": text}}
            if validated(SendRequestSerializer, data)["message"]["message"] != text:
                wrong.append(text)
            with pytest.raises(serializers.ValidationError):
                validated(SendRequestSerializer, BAD[i % len(BAD)])

    threads = [threading.Thread(target=validate_many, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
