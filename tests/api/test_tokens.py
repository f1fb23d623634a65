"""Tokens that can be revoked: refresh tokens rotate, are blacklisted on use and on logout,
and die with a password change or a deactivation. JWTs are signed with their own key."""

import jwt
import pytest
from django.conf import settings
from rest_framework_simplejwt.tokens import AccessToken

from sqs_app import tokens
from tests.helpers import assert_error_envelope

pytestmark = pytest.mark.django_db


def login(client, password: str = "wonderland-pass") -> dict:  # noqa: S107
    response = client.post("/api/token/", {"username": "alice", "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def refresh(client, token: str):
    return client.post("/api/token/refresh/", {"refresh": token}, format="json")


def test_a_refresh_returns_a_new_refresh_token_and_the_old_one_stops_working(anon_client, user):
    first = login(anon_client)["refresh"]

    rotated = refresh(anon_client, first)
    assert rotated.status_code == 200, rotated.content
    second = rotated.json()["refresh"]
    assert second != first

    error = assert_error_envelope(refresh(anon_client, first), 401, "AUTHENTICATION_FAILED")
    assert error["message"] == "Token is blacklisted"
    assert refresh(anon_client, second).status_code == 200


def test_logout_blacklists_the_refresh_token(anon_client, user):
    token = login(anon_client)["refresh"]

    response = anon_client.post("/api/token/logout/", {"refresh": token}, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == {}
    assert_error_envelope(refresh(anon_client, token), 401, "AUTHENTICATION_FAILED")


def test_logout_with_a_garbage_token_is_a_401(anon_client, db):
    response = anon_client.post("/api/token/logout/", {"refresh": "garbage"}, format="json")

    assert_error_envelope(response, 401, "AUTHENTICATION_FAILED")


def test_logout_without_a_token_is_a_422(anon_client, db):
    error = assert_error_envelope(
        anon_client.post("/api/token/logout/", {}, format="json"), 422, "VALIDATION_ERROR"
    )

    assert set(error["details"]["fields"]) == {"refresh"}


def test_a_password_change_revokes_every_refresh_token(anon_client, user):
    sessions = [login(anon_client)["refresh"], login(anon_client)["refresh"]]

    user.set_password("a-brand-new-password")
    user.save()

    for token in sessions:
        assert_error_envelope(refresh(anon_client, token), 401, "AUTHENTICATION_FAILED")
    assert refresh(anon_client, login(anon_client, "a-brand-new-password")["refresh"]).status_code == 200


def test_deactivating_a_user_revokes_their_refresh_tokens(anon_client, user):
    token = login(anon_client)["refresh"]

    user.is_active = False
    user.save(update_fields=["is_active"])
    user.is_active = True
    user.save()

    assert_error_envelope(refresh(anon_client, token), 401, "AUTHENTICATION_FAILED")


def test_saving_other_fields_leaves_the_tokens_alone(anon_client, user):
    token = login(anon_client)["refresh"]

    user.email = "alice@elsewhere.example"
    user.save()

    assert refresh(anon_client, token).status_code == 200
    assert tokens.tokens_revoke(user=user) == 1  # the rotated one; the first went when used


def test_a_refresh_token_of_a_deleted_user_is_a_401(anon_client, user):
    token = login(anon_client)["refresh"]
    user.delete()

    assert_error_envelope(refresh(anon_client, token), 401, "AUTHENTICATION_FAILED")


# --- The signing keys ---------------------------------------------------------------------------


def test_jwts_are_signed_with_a_key_that_is_not_the_secret_key(user):
    token = str(AccessToken.for_user(user))

    assert jwt.decode(token, settings.JWT_SIGNING_KEY, algorithms=["HS256"])["user_id"] == str(user.pk)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, settings.SECRET_KEY, algorithms=["HS256"])


@pytest.mark.parametrize("key_name", ["WEBHOOK_SIGNING_SECRET", "SECRET_KEY"])
def test_a_jwt_signed_with_another_key_is_refused(anon_client, user, key_name):
    """Webhook receivers hold WEBHOOK_SIGNING_SECRET: it must not let them mint a token."""
    forged = jwt.encode(
        {**AccessToken.for_user(user).payload},
        getattr(settings, key_name),
        algorithm="HS256",
    )
    anon_client.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")

    assert_error_envelope(anon_client.get("/sqs/queues"), 401, "AUTHENTICATION_FAILED")


def test_the_webhook_key_is_neither_the_secret_key_nor_the_jwt_key():
    assert settings.WEBHOOK_SIGNING_SECRET not in (settings.SECRET_KEY, settings.JWT_SIGNING_KEY)
    assert settings.SECRET_KEY not in settings.WEBHOOK_SIGNING_SECRET
