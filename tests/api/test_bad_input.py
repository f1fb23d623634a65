"""Bad input is a 4xx naming what is wrong, never an outage (500 or DATABASE_UNAVAILABLE).

Each case was a 500 or a 503 before: PostgreSQL refuses NUL in text and jsonb,
1e400 parses to infinity, and deep JSON made the parser recurse until it failed.
"""

import json
import logging
import traceback
from unittest import mock

import pytest
from django.db import DataError, IntegrityError, OperationalError

from sqs_app import services
from sqs_app.models import Message
from sqs_app.schemas import MAX_DEPTH, MAX_REQUEST_DEPTH
from tests.helpers import assert_error_envelope

pytestmark = pytest.mark.django_db


def post_raw(client, path: str, raw: str):
    """POST a body written by hand, so that it can carry what json.dumps would not write."""
    return client.generic("POST", path, raw.encode("utf-8", "surrogatepass"), content_type="application/json")


def send_raw(client, message_json: str, attributes_json: str = "{}"):
    return post_raw(
        client,
        "/sqs/send",
        f'{{"queue_name": "default", "message": {message_json}, "attributes": {attributes_json}}}',
    )


def fields_of(response) -> dict:
    return assert_error_envelope(response, 422, "VALIDATION_ERROR")["details"]["fields"]


# --- Characters SQS refuses, and numbers that are not finite ---------------------------------


@pytest.mark.parametrize(
    ("message_json", "path"),
    [
        ('{"data": {"x": {"y": "a\\u0000b"}}}', "message.data.x.y"),
        ('{"note": "\\u0000"}', "message.note"),
        ('{"message": "\\u0000"}', "message.message"),
        ('{"list": ["ok", "bad\\u0000"]}', "message.list[1]"),
        ('{"bell": "\\u0007"}', "message.bell"),
        ('{"noncharacter": "\\uffff"}', "message.noncharacter"),
        ('{"lone_surrogate": "\\ud800"}', "message.lone_surrogate"),
    ],
)
def test_a_character_sqs_refuses_is_a_422_naming_its_path(api_client, sqs_untouched, message_json, path):
    fields = fields_of(send_raw(api_client, message_json))

    assert list(fields) == [path]
    assert "character SQS does not accept" in fields[path][0]
    assert not Message.objects.exists()


def test_a_nul_in_a_key_is_a_422_naming_the_key(api_client, sqs_untouched):
    fields = fields_of(send_raw(api_client, '{"data": {"k\\u0000ey": 1}}'))

    assert list(fields) == ["message.data.k\x00ey"]
    assert fields["message.data.k\x00ey"][0].startswith("This key:")


def test_the_allowed_characters_of_sqs_are_accepted(api_client, boto_sqs):
    text = "tab\there, newline\n, é, \ud7ff, \ue000, \ufffd, 😀, \U0010fffd"

    response = api_client.post(
        "/sqs/send", {"queue_name": "default", "message": {"text": text}}, format="json"
    )

    assert response.status_code == 200, response.content
    assert Message.objects.get().body["text"] == text


@pytest.mark.parametrize("number", ["1e400", "-1e400"])
def test_a_number_too_large_to_be_finite_is_a_422(api_client, sqs_untouched, number):
    fields = fields_of(send_raw(api_client, f'{{"data": {{"reading": {number}}}}}'))

    assert list(fields) == ["message.data.reading"]
    assert "finite" in fields["message.data.reading"][0]


def test_nan_and_infinity_literals_are_malformed_json(api_client, sqs_untouched):
    assert_error_envelope(send_raw(api_client, '{"x": NaN}'), 400, "MALFORMED_REQUEST")
    assert_error_envelope(send_raw(api_client, '{"x": Infinity}'), 400, "MALFORMED_REQUEST")


@pytest.mark.parametrize(
    ("attributes_json", "path"),
    [('{"tag": "a\\u0000b"}', "attributes.tag"), ('{"weight": 1e400}', "attributes.weight")],
)
def test_bad_attribute_values_are_a_422(api_client, sqs_untouched, attributes_json, path):
    assert list(fields_of(send_raw(api_client, '{"m": 1}', attributes_json))) == [path]


def test_a_bad_entry_of_a_batch_is_named_by_its_index(api_client, sqs_untouched):
    response = post_raw(
        api_client,
        "/sqs/send-batch",
        '{"queue_name": "default", "messages": [{"message": {"m": 1}}, {"message": {"m": "\\u0000"}}]}',
    )

    assert list(fields_of(response)) == ["messages[1].message.m"]


# --- Nesting -------------------------------------------------------------------------------------


def nested(levels: int) -> str:
    """A message nesting `levels` objects and arrays: {"d": [[...]]}."""
    return '{"d": ' + "[" * (levels - 1) + "]" * (levels - 1) + "}"


def test_a_message_nested_to_the_documented_depth_is_accepted(api_client, boto_sqs):
    assert send_raw(api_client, nested(MAX_DEPTH)).status_code == 200


def test_a_message_nested_one_level_deeper_is_a_422_naming_where(api_client, sqs_untouched):
    fields = fields_of(send_raw(api_client, nested(MAX_DEPTH + 1)))

    ((path, reasons),) = fields.items()
    assert path == "message.d" + "[0]" * (MAX_DEPTH - 1)
    assert reasons == [f"Nested deeper than {MAX_DEPTH} levels."]


@pytest.mark.parametrize("levels", [MAX_REQUEST_DEPTH + 1, 921, 5000, 100_000])
def test_a_body_nested_past_the_request_depth_is_a_422_without_parsing_it(api_client, sqs_untouched, levels):
    with mock.patch("rest_framework.utils.json.loads", side_effect=AssertionError("parsed")):
        response = send_raw(api_client, nested(levels))

    error = assert_error_envelope(response, 422, "VALIDATION_ERROR")
    assert str(MAX_REQUEST_DEPTH) in error["message"]


def test_brackets_inside_strings_do_not_count_as_nesting(api_client, boto_sqs):
    text = '[{"\\"' * 200

    assert send_raw(api_client, json.dumps({"text": text})).status_code == 200


def test_a_deep_body_on_the_token_endpoint_is_a_422_too(anon_client, db):
    body = '{"username": ' + "[" * 5000 + "]" * 5000 + ', "password": "x"}'

    assert_error_envelope(post_raw(anon_client, "/api/token/", body), 422, "VALIDATION_ERROR")


def test_a_body_that_is_not_utf8_is_malformed(api_client, sqs_untouched):
    response = api_client.generic("POST", "/sqs/send", b'{"m": "\xff"}', content_type="application/json")

    assert_error_envelope(response, 400, "MALFORMED_REQUEST")


# --- Paths and query parameters ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/sqs/messages/%00",
        "/sqs/messages/a%00b",
        "/sqs/receive/%00",
        "/sqs/messages/%01",
        "/sqs/dlq/%00/redrive",
    ],
)
def test_a_control_character_in_a_path_is_a_404(api_client, sqs_untouched, path):
    response = api_client.post(path) if path.endswith("redrive") else api_client.get(path)

    assert_error_envelope(response, 404, "NOT_FOUND")


@pytest.mark.parametrize(
    "query",
    ["queue=%00", "correlation_id=a%00", "task_type=%00", "status=%00", "page=%00", "created_after=%00"],
)
def test_a_nul_in_a_query_parameter_is_a_400(api_client, query):
    assert_error_envelope(api_client.get(f"/sqs/messages?{query}"), 400, "INVALID_PARAMETER")


def test_a_nul_in_a_receipt_handle_is_a_400(api_client, sqs_untouched):
    response = api_client.delete("/sqs/message/default?receipt_handle=a%00b")

    assert_error_envelope(response, 400, "INVALID_PARAMETER")


def test_a_very_long_message_id_is_simply_not_found(api_client):
    assert_error_envelope(api_client.get("/sqs/messages/" + "x" * 5000), 404, "MESSAGE_NOT_FOUND")


def test_a_url_over_the_limit_is_a_414_envelope(api_client, settings):
    response = api_client.delete("/sqs/message/default?receipt_handle=" + "h" * settings.MAX_URL_BYTES)

    assert_error_envelope(response, 414, "URI_TOO_LONG")


def test_a_header_over_the_limit_is_a_431_envelope(api_client, settings):
    response = api_client.get("/sqs/queues", HTTP_X_PADDING="p" * (settings.MAX_HEADER_BYTES + 1))

    error = assert_error_envelope(response, 431, "HEADER_TOO_LARGE")
    assert error["details"]["header"] == "X-Padding"


# --- Database errors caused by data --------------------------------------------------------------


@pytest.fixture
def quiet_client(operator):
    from rest_framework.test import APIClient

    client = APIClient(raise_request_exception=False)
    client.force_authenticate(operator)
    return client


def test_data_the_database_refuses_is_a_422_not_an_outage(quiet_client, sqs_untouched):
    # A caller-chosen id is reserved in the history before anything reaches SQS.
    refused = DataError("invalid byte sequence for encoding UTF8: 0x00")
    message = {"id": "6b0f0a3e-5c1d-4c55-9d6e-2f1b7a9c8e10", "m": 1}
    with mock.patch.object(services.Message.objects, "bulk_create", side_effect=refused):
        response = quiet_client.post(
            "/sqs/send", {"queue_name": "default", "message": message}, format="json"
        )

    error = assert_error_envelope(response, 422, "VALIDATION_ERROR")
    assert error["message"] == "The request carries data the database cannot store."


def test_a_data_error_in_a_read_is_a_422(quiet_client):
    refused = DataError("invalid byte sequence")
    with mock.patch("sqs_app.selectors.message_list", side_effect=refused):
        response = quiet_client.get("/sqs/messages")

    assert_error_envelope(response, 422, "VALIDATION_ERROR")


def test_an_unexpected_integrity_error_is_a_logged_500_not_an_outage(quiet_client, caplog):
    broken = IntegrityError("null value in column violates not-null constraint")
    with (
        mock.patch("sqs_app.selectors.message_list", side_effect=broken),
        caplog.at_level(logging.ERROR, logger="sqs_app.errors"),
    ):
        response = quiet_client.get("/sqs/messages")

    error = assert_error_envelope(response, 500, "INTERNAL_ERROR")
    (record,) = [r for r in caplog.records if r.name == "sqs_app.errors"]
    assert "not-null constraint" in "".join(traceback.format_exception(*record.exc_info))
    assert record.request_id == error["request_id"]


def test_a_database_outage_is_logged_with_its_cause_and_the_request_id(quiet_client, sqs_untouched, caplog):
    down = OperationalError("could not connect to server")
    # A caller-chosen id: its reservation is the write that meets the outage, before SQS.
    message = {"id": "0d7c6f1e-8a2b-4f3c-9e5d-1a2b3c4d5e6f", "m": 1}
    with (
        mock.patch.object(services.Message.objects, "bulk_create", side_effect=down),
        caplog.at_level(logging.ERROR, logger="sqs_app.errors"),
    ):
        response = quiet_client.post(
            "/sqs/send", {"queue_name": "default", "message": message}, format="json"
        )

    error = assert_error_envelope(response, 503, "DATABASE_UNAVAILABLE")
    (record,) = [r for r in caplog.records if r.name == "sqs_app.errors"]
    assert record.exc_info[1].__cause__ is down
    assert record.request_id == error["request_id"]
