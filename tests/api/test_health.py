"""GET /health: can Wipsie reach its database and SQS? No authentication needed; staff read more."""

from datetime import timedelta
from unittest import mock

import pytest
from django.db import OperationalError
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from sqs_app import health
from tests.helpers import boto_queue_url, jwt_client, make_sqs_unreachable

pytestmark = pytest.mark.django_db

CHECK_KEYS = {"status", "latency_ms"}
FAILED_CHECK_KEYS = {"status", "latency_ms", "error", "message"}


def test_it_reports_both_checks_ok_without_authentication(anon_client, sqs):
    response = anon_client.get("/health")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "checks"}
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "sqs", "consumers"}
    for name, check in body["checks"].items():
        # The consumers check also lists each consumed queue (none here: tests/test_consumers.py).
        assert set(check) == CHECK_KEYS | ({"queues"} if name == "consumers" else set())
        assert check["status"] == "ok"
        assert check["latency_ms"] >= 0
    assert response["X-Request-ID"].startswith("req-")


def test_it_ignores_a_bad_token(anon_client, sqs):
    anon_client.credentials(HTTP_AUTHORIZATION="Bearer garbage")

    assert anon_client.get("/health").status_code == 200


def test_it_answers_503_naming_sqs_when_sqs_is_unreachable(anon_client, sqs, settings):
    make_sqs_unreachable(settings)

    response = anon_client.get("/health")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["database"]["status"] == "ok"
    sqs_check = body["checks"]["sqs"]
    assert set(sqs_check) == FAILED_CHECK_KEYS
    assert (sqs_check["status"], sqs_check["error"]) == ("error", "SQS_UNAVAILABLE")


@pytest.mark.timeout(20)
def test_a_hung_sqs_is_an_error_after_one_short_attempt(anon_client, hung_sqs):
    # The normal client would wait 30 s per attempt, three attempts: this test's
    # 20 s limit fails it. The health check asks once, with the admin's short timeout.
    response = anon_client.get("/health")

    assert response.status_code == 503
    assert response.json()["checks"]["sqs"]["error"] == "SQS_UNAVAILABLE"
    assert len(hung_sqs.connections) == 1


def test_it_answers_503_when_the_queues_are_not_provisioned(anon_client, boto_sqs):
    boto_sqs.delete_queue(QueueUrl=boto_queue_url(boto_sqs, "default"))

    response = anon_client.get("/health")

    assert response.status_code == 503
    assert response.json()["checks"]["sqs"]["error"] == "QUEUE_NOT_PROVISIONED"


DATABASE_DOWN = OperationalError('connection to server at "db.internal" (10.0.3.4), port 5432 failed')


def test_it_answers_503_naming_the_database_when_it_fails(anon_client, sqs, caplog):
    with mock.patch("django.db.backends.utils.CursorWrapper.execute", side_effect=DATABASE_DOWN):
        response = anon_client.get("/health")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["sqs"]["status"] == "ok"
    database = body["checks"]["database"]
    assert set(database) == FAILED_CHECK_KEYS
    assert database["status"] == "error"
    assert database["error"] == "OperationalError"
    # The driver's text names the database's host: not for anyone who asks, but in the log.
    assert database["message"] == health.UNEXPECTED_MESSAGE
    assert "db.internal" not in response.content.decode()
    [logged] = [
        r for r in caplog.records if r.name == "sqs_app.health" and "check database" in r.getMessage()
    ]
    assert "db.internal" in logged.getMessage()
    assert logged.request_id == response["X-Request-ID"]


def test_staff_read_the_database_error_itself(staff, sqs):
    client = jwt_client(staff)
    assert client.get("/health").status_code == 200  # the user is cached from here on
    with mock.patch("django.db.backends.utils.CursorWrapper.execute", side_effect=DATABASE_DOWN):
        response = client.get("/health")

    assert response.status_code == 503
    assert response.json()["checks"]["database"]["message"] == str(DATABASE_DOWN)


def test_a_staff_token_whose_user_cannot_be_read_gets_the_public_answer(staff, sqs):
    client = jwt_client(staff)
    with mock.patch("django.db.backends.utils.CursorWrapper.execute", side_effect=DATABASE_DOWN):
        response = client.get("/health")  # the user is not cached: reading it fails too

    assert response.status_code == 503
    assert response.json()["checks"]["database"]["message"] == health.UNEXPECTED_MESSAGE


def test_an_expired_staff_token_gets_the_public_answer_not_a_401(staff, sqs):
    token = AccessToken.for_user(staff)
    token.set_exp(lifetime=-timedelta(seconds=1))
    expired = APIClient()
    expired.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    with mock.patch("django.db.backends.utils.CursorWrapper.execute", side_effect=DATABASE_DOWN):
        response = expired.get("/health")

    assert response.status_code == 503
    assert response.json()["checks"]["database"]["message"] == health.UNEXPECTED_MESSAGE


# --- /health/ready: the readiness probe ---------------------------------------------------


def test_readiness_stays_ok_when_sqs_is_unreachable(anon_client, sqs_untouched):
    """An SQS blip must not take every API pod out of service: readiness asks the database only."""
    response = anon_client.get("/health/ready")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert set(response.json()["checks"]) == {"database"}


def test_readiness_fails_when_the_database_does(anon_client):
    with mock.patch("sqs_app.health.connection.cursor", side_effect=DATABASE_DOWN):
        response = anon_client.get("/health/ready")

    assert response.status_code == 503
    assert response.json()["checks"]["database"]["status"] == "error"
    assert response.json()["checks"]["database"]["message"] == health.UNEXPECTED_MESSAGE
