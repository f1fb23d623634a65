"""Bearer authentication with the user cached (sqs_app.authentication), and its revocation.

A password change or a deactivation saved through the ORM refuses the user's
tokens at once in the process that saved it; another process (here: a change
that bypasses the signal, as a bulk update or another process's save with a
per-process cache does) refuses them once its cached copy expires, which is at
most AUTH_USER_CACHE_SECONDS (60) later. Expiry is shown by removing the entry,
which is what the cache does when the timeout passes: no test waits.
"""

from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from sqs_app.authentication import user_cache_key
from tests.helpers import assert_error_envelope

pytestmark = pytest.mark.django_db


def bearer(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    return client


def expire(user) -> None:
    """What the cache does AUTH_USER_CACHE_SECONDS after it stored the user."""
    cache.delete(user_cache_key(user.pk))


def test_a_second_request_reads_no_user_from_the_database(user, sqs_untouched):
    client = bearer(user)
    assert client.get("/sqs/queues").status_code == 200

    with CaptureQueriesContext(connection) as queries:
        assert client.get("/sqs/queues").status_code == 200

    assert [q["sql"] for q in queries.captured_queries if "auth_user" in q["sql"]] == []


def test_the_user_is_cached_for_at_most_sixty_seconds(user, sqs_untouched, settings):
    assert settings.AUTH_USER_CACHE_SECONDS <= 60
    with mock.patch.object(cache, "set", wraps=cache.set) as cache_set:
        assert bearer(user).get("/sqs/queues").status_code == 200

    [stored] = [c for c in cache_set.call_args_list if c.args[0] == user_cache_key(user.pk)]
    assert stored.kwargs["timeout"] == settings.AUTH_USER_CACHE_SECONDS


def test_a_password_change_refuses_existing_tokens_at_once(user, sqs_untouched):
    client = bearer(user)
    assert client.get("/sqs/queues").status_code == 200

    user.set_password("a-new-password-42")
    user.save()

    error = assert_error_envelope(client.get("/sqs/queues"), 401, "AUTHENTICATION_FAILED")
    assert "password" in error["message"]
    assert bearer(user).get("/sqs/queues").status_code == 200  # a token issued after the change works


def test_a_refresh_token_from_before_the_password_change_mints_refused_access_tokens(user, sqs_untouched):
    refresh = RefreshToken.for_user(user)

    user.set_password("a-new-password-42")
    user.save()

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {refresh.access_token}")
    assert_error_envelope(client.get("/sqs/queues"), 401, "AUTHENTICATION_FAILED")


def test_a_deactivation_refuses_existing_tokens_at_once(user, sqs_untouched):
    client = bearer(user)
    assert client.get("/sqs/queues").status_code == 200

    user.is_active = False
    user.save()

    assert_error_envelope(client.get("/sqs/queues"), 401, "AUTHENTICATION_FAILED")


def test_a_deleted_user_is_refused(user, sqs_untouched):
    client = bearer(user)
    assert client.get("/sqs/queues").status_code == 200

    user.delete()

    assert_error_envelope(client.get("/sqs/queues"), 401, "AUTHENTICATION_FAILED")


def test_another_process_refuses_the_token_once_its_copy_expires(user, sqs_untouched):
    """A change the signal does not reach (another process, a bulk update) is refused after the TTL."""
    client = bearer(user)
    assert client.get("/sqs/queues").status_code == 200

    get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    # Within the documented window the cached copy still answers...
    assert client.get("/sqs/queues").status_code == 200
    expire(user)
    # ...and once it has expired, the database's answer counts.
    assert_error_envelope(client.get("/sqs/queues"), 401, "AUTHENTICATION_FAILED")


def test_another_processs_password_change_is_refused_once_its_copy_expires(user, sqs_untouched):
    client = bearer(user)
    assert client.get("/sqs/queues").status_code == 200

    user.set_password("changed-elsewhere-42")
    get_user_model().objects.filter(pk=user.pk).update(password=user.password)
    expire(user)

    assert_error_envelope(client.get("/sqs/queues"), 401, "AUTHENTICATION_FAILED")


def test_a_token_without_the_password_claim_is_refused(user, sqs_untouched):
    token = AccessToken.for_user(user)
    del token["hash_password"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    assert_error_envelope(client.get("/sqs/queues"), 401, "AUTHENTICATION_FAILED")


def test_a_cached_user_still_has_every_check_applied(user, sqs_untouched):
    """A token made for the cached user but with a stale password claim is refused from the cache."""
    assert bearer(user).get("/sqs/queues").status_code == 200
    stale = AccessToken.for_user(user)
    stale["hash_password"] = "0" * 32
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {stale}")

    with CaptureQueriesContext(connection) as queries:
        response = client.get("/sqs/queues")

    assert_error_envelope(response, 401, "AUTHENTICATION_FAILED")
    assert not [q for q in queries.captured_queries if "auth_user" in q["sql"]]


def test_a_token_is_verified_once_and_then_remembered_until_it_expires(user, sqs_untouched):
    from rest_framework_simplejwt.tokens import AccessToken as Access

    client = bearer(user)
    with mock.patch.object(Access, "verify", autospec=True, side_effect=Access.verify) as verify:
        assert client.get("/sqs/queues").status_code == 200
        assert client.get("/sqs/queues").status_code == 200

    assert verify.call_count <= 1  # the first request may have verified it already, never the second


def test_a_token_is_remembered_no_longer_than_it_is_valid(user, sqs_untouched, settings):
    from datetime import timedelta

    from sqs_app import authentication

    token = AccessToken.for_user(user)
    token.set_exp(lifetime=timedelta(seconds=5))  # expires long before the cache would forget it
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/sqs/queues").status_code == 200

    until, _ = authentication._validated_tokens[str(token).encode()]
    assert until == token["exp"]
    assert until <= authentication.time.time() + settings.AUTH_USER_CACHE_SECONDS


def test_past_its_time_a_remembered_token_is_verified_again(user, sqs_untouched):
    from rest_framework_simplejwt.tokens import AccessToken as Access

    token = AccessToken.for_user(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/sqs/queues").status_code == 200

    later = token["exp"] + 1
    with (
        mock.patch("sqs_app.authentication.time.time", return_value=later),
        mock.patch.object(Access, "verify", autospec=True, side_effect=Access.verify) as verify,
    ):
        client.get("/sqs/queues")

    assert verify.called


def test_a_tampered_token_is_never_taken_for_a_remembered_one(user, sqs_untouched):
    token = str(AccessToken.for_user(user))
    assert bearer(user).get("/sqs/queues").status_code == 200
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tampered}")

    assert_error_envelope(client.get("/sqs/queues"), 401, "AUTHENTICATION_FAILED")


@pytest.mark.django_db(transaction=True)
def test_an_operators_send_after_the_first_is_only_the_sends_own_insert(operator, boto_sqs):
    """Neither the user nor their permissions are read again: the send's row and event, only.

    One statement on PostgreSQL (a WITH clause), two INSERTs on SQLite.
    """
    client = bearer(operator)
    send = {"queue_name": "default", "message": {"message": "hi"}}
    assert client.post("/sqs/send", send, format="json").status_code == 200

    with CaptureQueriesContext(connection) as queries:
        assert client.post("/sqs/send", send, format="json").status_code == 200

    expected = ["WITH"] if connection.vendor == "postgresql" else ["INSERT", "INSERT"]
    assert [q["sql"].split()[0] for q in queries.captured_queries] == expected


def test_a_users_permissions_travel_with_the_cached_copy(operator, sqs_untouched):
    client = bearer(operator)
    assert client.get("/sqs/queues").status_code == 200

    cached = cache.get(user_cache_key(operator.pk))

    assert cached._perm_cache


def test_a_permission_given_to_the_users_group_counts_at_once(bob, boto_sqs):
    from django.contrib.auth.models import Group, Permission

    client = bearer(bob)
    send = {"queue_name": "default", "message": {"message": "hi"}}
    assert client.post("/sqs/send", send, format="json").status_code == 403
    senders = Group.objects.create(name="senders")
    bob.groups.add(senders)
    assert client.post("/sqs/send", send, format="json").status_code == 403  # the group has nothing yet

    senders.permissions.add(Permission.objects.get(codename="send_message"))

    assert client.post("/sqs/send", send, format="json").status_code == 200
