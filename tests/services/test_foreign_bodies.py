"""Bodies from other producers: JSON that parses but cannot be kept is kept as the raw string."""

import json

import pytest

from sqs_app.schemas import MAX_DEPTH
from sqs_app.services import body_problem, parse_body


@pytest.mark.parametrize(
    "raw, problem",
    [
        ('{"task_type": "processing", "data": {"note": "\\u0000"}}', "data.note: Contains a character SQS"),
        ('{"task_type": "processing", "data": {"n": 1e400}}', "data.n: Numbers must be finite"),
        ('{"items": [1, {"x": 1e999}]}', "items[1].x: Numbers must be finite"),
        ("[" * 5000 + "]" * 5000, f"Nested deeper than {MAX_DEPTH} levels."),
    ],
)
def test_a_body_wipsie_cannot_keep_as_json_is_kept_as_the_string_it_arrived_as(raw, problem):
    assert parse_body(raw) == raw
    assert body_problem(raw).startswith(problem)


def test_ordinary_bodies_parse_as_before():
    assert parse_body('{"a": [1, 2]}') == {"a": [1, 2]}
    assert parse_body("plain text") == "plain text"
    assert body_problem("plain text") is None
    assert body_problem(json.dumps({"a": 1})) is None
