"""sqs_app.json_safety: JSON that parses but cannot be kept, found without recursion."""

import json

import pytest

from sqs_app.json_safety import MAX_JSON_DEPTH, json_problem
from sqs_app.services import body_problem, parse_body


@pytest.mark.parametrize(
    "document, problem",
    [
        ({"task_type": "x", "data": {"note": "a\x00b"}}, "a NUL character at data.note"),
        ({"data": {"a\x00": 1}}, "a NUL character in a key at data"),
        ({"data": {"n": float("inf")}}, "a number out of range at data.n"),
        ({"items": [1, {"x": float("nan")}]}, "a number out of range at items[1].x"),
        ({"ok": [1, 2.5, "text", None, True]}, None),
    ],
)
def test_it_names_the_problem_and_where_it_is(document, problem):
    assert json_problem(document) == problem


def test_nesting_beyond_the_limit_is_a_problem_and_at_the_limit_is_not():
    def nested(depth):
        value = []
        for _ in range(depth):
            value = [value]
        return value

    assert json_problem(nested(MAX_JSON_DEPTH)) is None
    assert json_problem(nested(MAX_JSON_DEPTH + 1)).startswith(f"nesting deeper than {MAX_JSON_DEPTH} levels")


@pytest.mark.parametrize(
    "raw, problem",
    [
        ('{"task_type": "processing", "data": {"note": "\\u0000"}}', "a NUL character at data.note"),
        ('{"task_type": "processing", "data": {"n": 1e400}}', "a number out of range at data.n"),
        ("[" * 5000 + "]" * 5000, f"nesting deeper than {MAX_JSON_DEPTH} levels"),
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
