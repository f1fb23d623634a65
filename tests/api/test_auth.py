"""Authentication: JWTs from /api/token/, and Django sessions for staff in a browser."""

from datetime import timedelta

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from tests.helpers import assert_error_envelope

pytestmark = pytest.mark.django_db

PROTECTED = [
    ("get", "/sqs/queues"),
    ("post", "/sqs/send"),
    ("post", "/sqs/send-batch"),
    ("get", "/sqs/receive/default"),
    ("delete", "/sqs/message/default?receipt_handle=x"),
    ("post", "/sqs/test-message"),
    ("get", "/sqs/messages"),
    ("get", "/sqs/messages/some-id"),
]


def bearer(token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_every_sqs_endpoint_answers_401_without_credentials(anon_client, sqs_untouched, method, path):
    response = getattr(anon_client, method)(path, format="json")

    error = assert_error_envelope(response, 401, "NOT_AUTHENTICATED")
    assert error["message"] == "Authentication credentials were not provided."
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_token_from_the_token_endpoint_authenticates(anon_client, user):
    response = anon_client.post(
        "/api/token/", {"username": "alice", "password": "wonderland-pass"}, format="json"
    )

    assert response.status_code == 200
    tokens = response.json()
    assert set(tokens) == {"access", "refresh"}
    assert bearer(tokens["access"]).get("/sqs/queues").status_code == 200


def test_a_refreshed_token_authenticates(anon_client, user):
    tokens = anon_client.post(
        "/api/token/", {"username": "alice", "password": "wonderland-pass"}, format="json"
    ).json()

    response = anon_client.post("/api/token/refresh/", {"refresh": tokens["refresh"]}, format="json")

    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}  # a new refresh token: they rotate
    assert bearer(response.json()["access"]).get("/sqs/queues").status_code == 200


def test_a_wrong_password_gets_no_token(anon_client, user):
    response = anon_client.post("/api/token/", {"username": "alice", "password": "guess"}, format="json")

    error = assert_error_envelope(response, 401, "AUTHENTICATION_FAILED")
    assert error["message"] == "No active account found with the given credentials"


def test_an_inactive_user_gets_no_token(anon_client, user):
    user.is_active = False
    user.save()

    response = anon_client.post(
        "/api/token/", {"username": "alice", "password": "wonderland-pass"}, format="json"
    )

    assert_error_envelope(response, 401, "AUTHENTICATION_FAILED")


def test_the_token_endpoint_names_missing_fields(anon_client, db):
    error = assert_error_envelope(anon_client.post("/api/token/", {}, format="json"), 422, "VALIDATION_ERROR")

    assert set(error["details"]["fields"]) == {"username", "password"}


def test_a_garbage_refresh_token_is_refused(anon_client, db):
    response = anon_client.post("/api/token/refresh/", {"refresh": "garbage"}, format="json")

    assert_error_envelope(response, 401, "AUTHENTICATION_FAILED")


def test_an_expired_token_is_refused(user):
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-timedelta(seconds=1))

    response = bearer(token).get("/sqs/queues")

    error = assert_error_envelope(response, 401, "AUTHENTICATION_FAILED")
    assert error["message"] == "Given token not valid for any token type"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize("token", ["garbage", "a.b.c", ""])
def test_a_garbage_token_is_refused(db, token):
    response = bearer(token).get("/sqs/queues")

    assert_error_envelope(response, 401, "AUTHENTICATION_FAILED")


def test_a_refresh_token_is_not_an_access_token(anon_client, user):
    tokens = anon_client.post(
        "/api/token/", {"username": "alice", "password": "wonderland-pass"}, format="json"
    ).json()

    assert_error_envelope(bearer(tokens["refresh"]).get("/sqs/queues"), 401, "AUTHENTICATION_FAILED")


def test_a_token_of_a_deactivated_user_is_refused(api_client, user):
    user.is_active = False
    user.save()

    assert_error_envelope(api_client.get("/sqs/queues"), 401, "AUTHENTICATION_FAILED")


def test_another_authorization_scheme_counts_as_no_credentials(anon_client, db):
    anon_client.credentials(HTTP_AUTHORIZATION="Basic YWxpY2U6d29uZGVybGFuZC1wYXNz")

    assert_error_envelope(anon_client.get("/sqs/queues"), 401, "NOT_AUTHENTICATED")


def test_a_staff_session_authenticates(staff):
    client = APIClient()
    client.force_login(staff)

    response = client.get("/sqs/queues")

    assert response.status_code == 200
    assert response.json()["available_queues"][0] == "default"


def test_a_password_login_session_authenticates(staff):
    client = APIClient()
    assert client.login(username="admin", password="admin-pass-123")

    assert client.get("/sqs/messages").status_code == 200


def test_a_session_write_needs_the_csrf_token(staff, sqs_untouched):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff)

    response = client.post("/sqs/test-message")

    error = assert_error_envelope(response, 403, "CSRF_FAILED")
    assert error["message"].startswith("CSRF verification failed: CSRF cookie not set")
