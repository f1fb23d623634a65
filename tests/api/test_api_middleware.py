"""The middleware a bearer /sqs call goes through: only what the API needs.

Sessions, request.user and flash messages are for browsers; a bearer call
skips them, and still gets its request id, CORS headers, the size limit and
its metrics. Browsers (the admin, the browsable API) keep the whole stack.
"""

from unittest import mock

import pytest
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from prometheus_client import REGISTRY

from tests.helpers import assert_error_envelope

pytestmark = pytest.mark.django_db


def spy(middleware_class, method: str):
    return mock.patch.object(
        middleware_class, method, autospec=True, side_effect=getattr(middleware_class, method)
    )


def test_a_bearer_call_skips_the_session_and_messages(api_client, sqs_untouched):
    with (
        spy(SessionMiddleware, "process_request") as session,
        spy(MessageMiddleware, "process_request") as flash,
    ):
        response = api_client.get("/sqs/queues")

    assert response.status_code == 200
    assert not session.called
    assert not flash.called
    assert "Cookie" not in response.get("Vary", "")
    assert not response.cookies


def test_a_browser_session_still_gets_the_whole_stack(client, staff, sqs_untouched):
    client.force_login(staff)
    with spy(SessionMiddleware, "process_request") as session:
        response = client.get("/sqs/queues", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    assert session.called


def test_the_admin_still_works(client, staff):
    client.force_login(staff)

    response = client.get("/admin/")

    assert response.status_code == 200
    assert response.wsgi_request.user == staff


def test_a_bearer_call_keeps_its_request_id_cors_and_metrics(api_client, sqs):
    def requests_counted() -> float:  # sqs_app.metrics.ApiMetricsMiddleware's counter
        return sum(
            sample.value
            for metric in REGISTRY.collect()
            if metric.name == "api_requests"
            for sample in metric.samples
            if sample.name == "api_requests_total" and sample.labels["endpoint"] == "/sqs/queues"
        )

    before = requests_counted()
    response = api_client.get(
        "/sqs/queues", HTTP_ORIGIN="http://localhost:4200", HTTP_X_REQUEST_ID="trace-me-7"
    )

    assert response["X-Request-ID"] == "trace-me-7"
    assert response["Access-Control-Allow-Origin"] == "http://localhost:4200"
    assert requests_counted() == before + 1


def test_a_bearer_call_keeps_the_size_limit(api_client, settings, sqs_untouched):
    settings.MAX_REQUEST_BYTES = 100

    response = api_client.post(
        "/sqs/send", {"queue_name": "default", "message": {"m": "x" * 200}}, format="json"
    )

    assert_error_envelope(response, 413, "REQUEST_TOO_LARGE")


def test_a_bad_bearer_token_is_refused_not_tried_as_a_session(client, staff, sqs_untouched):
    client.force_login(staff)

    response = client.get("/sqs/queues", HTTP_AUTHORIZATION="Bearer not-a-token")

    assert_error_envelope(response, 401, "AUTHENTICATION_FAILED")


def test_a_bearer_call_can_still_be_rendered_as_the_browsable_api(api_client, sqs_untouched):
    """Its template reads request.user and the messages, which the skipped middleware would set."""
    response = api_client.get("/sqs/queues", HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert b"available_queues" in response.content
