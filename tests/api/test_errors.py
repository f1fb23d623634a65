"""Every failure, from DRF or from Django itself, answers in the one error envelope."""

import re
from unittest import mock

import pytest
from django.core.cache import cache
from django.db import OperationalError
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from sqs_app import services
from sqs_app.middleware import UNREAD_BODY_DRAIN_BYTES
from tests.helpers import assert_error_envelope

pytestmark = pytest.mark.django_db

GENERATED_ID = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.fixture
def quiet_client(operator):
    """An authenticated client that returns 500 responses instead of re-raising the error."""
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(operator)
    return client


# --- Django-level and DRF-level HTTP errors -------------------------------------------------


@pytest.mark.parametrize("path", ["/nowhere", "/sqs/queues/", "/sqs/", "/sqs/receive/default/extra"])
def test_an_unknown_path_is_a_404_envelope(api_client, path):
    error = assert_error_envelope(api_client.get(path), 404, "NOT_FOUND")

    assert error["details"] == {"path": path}


def test_an_unknown_path_needs_no_authentication_to_be_reported(anon_client):
    assert_error_envelope(anon_client.get("/nowhere"), 404, "NOT_FOUND")


def test_a_wrong_method_is_a_405_envelope(api_client):
    response = api_client.delete("/sqs/queues")

    error = assert_error_envelope(response, 405, "METHOD_NOT_ALLOWED")
    assert error["message"] == 'Method "DELETE" not allowed.'
    assert "GET" in response["Allow"]


def test_a_request_declaring_a_huge_body_is_refused_with_413_before_reading_it(api_client, settings):
    # Past the size whose unread rest is drained to keep the connection usable:
    # nothing of it is read at all (the test client would fail reading past "{}").
    declared = max(settings.MAX_REQUEST_BYTES, UNREAD_BODY_DRAIN_BYTES) + 1

    response = api_client.post(
        "/sqs/send", "{}", content_type="application/json", CONTENT_LENGTH=str(declared)
    )

    error = assert_error_envelope(response, 413, "REQUEST_TOO_LARGE")
    assert error["details"] == {"size_bytes": declared, "max_bytes": settings.MAX_REQUEST_BYTES}


def test_a_body_over_the_request_limit_is_refused_with_413(api_client, settings, sqs_untouched):
    settings.MAX_REQUEST_BYTES = 1000

    response = api_client.post(
        "/sqs/send", {"queue_name": "default", "message": {"m": "x" * 2000}}, format="json"
    )

    assert_error_envelope(response, 413, "REQUEST_TOO_LARGE")


def test_a_non_numeric_content_length_is_a_400_envelope(api_client):
    response = api_client.post("/sqs/send", "{}", content_type="application/json", CONTENT_LENGTH="lots")

    assert_error_envelope(response, 400, "BAD_REQUEST")


def test_a_body_that_is_not_json_is_a_415_envelope(api_client, sqs_untouched):
    response = api_client.post("/sqs/send", "queue_name=default", content_type="text/plain")

    error = assert_error_envelope(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert "text/plain" in error["message"]


def test_a_form_post_is_a_415_envelope(api_client, sqs_untouched):
    response = api_client.post("/sqs/send", {"queue_name": "default"}, format="multipart")

    assert_error_envelope(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_malformed_json_is_a_400_envelope(api_client, sqs_untouched):
    response = api_client.post("/sqs/send", '{"queue_name": "default", ', content_type="application/json")

    error = assert_error_envelope(response, 400, "MALFORMED_REQUEST")
    assert error["message"].startswith("JSON parse error")


def test_a_missing_login_is_a_401_envelope(anon_client):
    response = anon_client.get("/sqs/messages")

    assert_error_envelope(response, 401, "NOT_AUTHENTICATED")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


# --- Throttling --------------------------------------------------------------------------------


@pytest.fixture
def user_rate_of_two_a_minute(settings, monkeypatch):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"anon": "2/minute", "user": "2/minute"},
    }
    # DRF reads the rates into a class attribute when it is imported, so a
    # settings override alone does not reach throttles; patch the copy too.
    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    )
    cache.clear()
    yield
    cache.clear()


def test_too_many_requests_is_a_429_envelope_with_retry_after(api_client, user_rate_of_two_a_minute):
    assert api_client.get("/sqs/queues").status_code == 200
    assert api_client.get("/sqs/queues").status_code == 200

    response = api_client.get("/sqs/queues")

    error = assert_error_envelope(response, 429, "THROTTLED")
    assert set(error["details"]) == {"retry_after_seconds"}
    assert 0 < error["details"]["retry_after_seconds"] <= 60
    assert int(response["Retry-After"]) == error["details"]["retry_after_seconds"]


def test_the_health_check_is_never_throttled(anon_client, sqs, user_rate_of_two_a_minute):
    assert [anon_client.get("/health").status_code for _ in range(4)] == [200] * 4


# --- Unexpected failures --------------------------------------------------------------------------


def test_an_unexpected_error_in_a_view_is_a_500_envelope_without_a_traceback(quiet_client):
    with mock.patch.object(
        services, "message_send", side_effect=RuntimeError("password=hunter2 in a traceback")
    ):
        response = quiet_client.post(
            "/sqs/send", {"queue_name": "default", "message": {"m": 1}}, format="json"
        )

    error = assert_error_envelope(response, 500, "INTERNAL_ERROR")
    assert error["message"] == "An internal error occurred."
    assert error["details"] == {}
    assert b"hunter2" not in response.content
    assert b"Traceback" not in response.content
    assert b"RuntimeError" not in response.content


def test_an_unexpected_error_outside_the_api_views_is_a_500_envelope(quiet_client):
    # Raised by a middleware, so Django's handler500 renders it, not DRF.
    with mock.patch(
        "django.contrib.sessions.middleware.SessionMiddleware.process_request",
        side_effect=RuntimeError("secret internals"),
    ):
        response = quiet_client.get("/sqs/queues")

    error = assert_error_envelope(response, 500, "INTERNAL_ERROR")
    assert (error["message"], error["details"]) == ("An internal error occurred.", {})
    assert b"secret internals" not in response.content
    assert b"Traceback" not in response.content


def test_a_database_outage_is_a_503_envelope(quiet_client, sqs_untouched):
    down = OperationalError("could not connect to server")
    with mock.patch("django.db.backends.utils.CursorWrapper.execute", side_effect=down):
        response = quiet_client.get("/sqs/messages")

    error = assert_error_envelope(response, 503, "DATABASE_UNAVAILABLE")
    assert error["message"] == "The database could not be reached."
    assert b"could not connect" not in response.content


def test_a_database_outage_while_authenticating_is_a_503_envelope(api_client, sqs_untouched):
    down = OperationalError("could not connect to server")
    with mock.patch("django.db.backends.utils.CursorWrapper.execute", side_effect=down):
        response = api_client.get("/sqs/queues")

    assert_error_envelope(response, 503, "DATABASE_UNAVAILABLE")


def test_a_database_outage_refuses_a_send_with_a_chosen_id_before_it_reaches_sqs(api_client, sqs_untouched):
    """Only a reservation can tell a retry from a new message: without the database, nothing is sent."""
    down = OperationalError("could not connect to server")
    message = {"id": "6f1c1b7e-7d4e-4f57-9c55-3f8e1b2a9d10", "m": 1}
    with mock.patch.object(services.Message.objects, "bulk_create", side_effect=down):
        response = api_client.post("/sqs/send", {"queue_name": "default", "message": message}, format="json")

    assert_error_envelope(response, 503, "DATABASE_UNAVAILABLE")


# --- The request id -----------------------------------------------------------------------------


def test_every_response_carries_a_generated_request_id(api_client):
    response = api_client.get("/sqs/queues")

    assert GENERATED_ID.match(response["X-Request-ID"])


def test_each_request_gets_its_own_id(api_client):
    assert api_client.get("/sqs/queues")["X-Request-ID"] != api_client.get("/sqs/queues")["X-Request-ID"]


def test_the_error_envelope_names_the_request_id_of_the_header(api_client):
    response = api_client.get("/nowhere")

    error = assert_error_envelope(response, 404, "NOT_FOUND")
    assert GENERATED_ID.match(error["request_id"])


@pytest.mark.parametrize("incoming", ["trace-123", "0af7651916cd43dd8448eb211c80319c", "svc.a:b_c-1"])
def test_a_plain_incoming_request_id_is_echoed(api_client, incoming):
    response = api_client.get("/nowhere", HTTP_X_REQUEST_ID=incoming)

    assert response["X-Request-ID"] == incoming
    assert response.json()["error"]["request_id"] == incoming


@pytest.mark.parametrize(
    "incoming",
    [
        "x" * 129,
        "id with spaces",
        "<script>alert(1)</script>",
        'forged" level=ERROR msg="admin logged in',
        "id\nINFO forged line",
        "",
    ],
)
def test_a_malicious_incoming_request_id_is_replaced(api_client, incoming):
    response = api_client.get("/nowhere", HTTP_X_REQUEST_ID=incoming)

    assert GENERATED_ID.match(response["X-Request-ID"])
    assert response.json()["error"]["request_id"] == response["X-Request-ID"]


def test_the_request_id_is_on_successful_responses_too(api_client):
    assert api_client.get("/sqs/queues", HTTP_X_REQUEST_ID="trace-9")["X-Request-ID"] == "trace-9"
