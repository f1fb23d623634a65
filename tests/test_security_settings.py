"""Secrets and production security settings, each read in a fresh interpreter with a clean environment."""

import json
import subprocess
import sys

import pytest

from tests.test_settings import A_GOOD_KEY, BASE_DIR, run_django

SHOW_KEYS = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({
    "secret": settings.SECRET_KEY,
    "jwt": settings.SIMPLE_JWT["SIGNING_KEY"],
    "webhook": settings.WEBHOOK_SIGNING_SECRET,
    "ssl_redirect": settings.SECURE_SSL_REDIRECT,
    "hsts": settings.SECURE_HSTS_SECONDS,
}))
"""


def keys(**env: str) -> dict:
    result = run_django(SHOW_KEYS, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- SECRET_KEY in production ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "abc",
        "a-short-but-otherwise-random-Key-9f8e7d",  # 40 characters
        "ab" * 40,  # long, two different characters
        "django-insecure-" + "x1y2z3w4v5u6t7s8r9q0" * 3,
    ],
)
def test_production_refuses_a_short_or_simple_secret_key(key):
    result = run_django("import django; django.setup()", DEBUG="false", SECRET_KEY=key)

    assert result.returncode != 0
    assert "django.core.exceptions.ImproperlyConfigured: SECRET_KEY is too weak" in result.stderr
    assert "at least 50 characters" in result.stderr


def test_a_short_secret_key_is_fine_for_local_development():
    result = run_django("import django; django.setup(); print('started')", DEBUG="true", SECRET_KEY="abc")

    assert result.returncode == 0, result.stderr


# --- Keys for one purpose each -----------------------------------------------------------------------


def test_the_jwt_and_webhook_keys_are_derived_one_way_and_differ_from_the_secret_key():
    first, again = keys(SECRET_KEY=A_GOOD_KEY), keys(SECRET_KEY=A_GOOD_KEY)
    other = keys(SECRET_KEY=A_GOOD_KEY + "-rotated")

    assert len({first["secret"], first["jwt"], first["webhook"]}) == 3
    assert A_GOOD_KEY not in first["jwt"] + first["webhook"]
    assert (first["jwt"], first["webhook"]) == (again["jwt"], again["webhook"])  # stable across restarts
    assert (other["jwt"], other["webhook"]) != (first["jwt"], first["webhook"])


def test_the_jwt_and_webhook_keys_can_be_set_on_their_own():
    shown = keys(
        SECRET_KEY=A_GOOD_KEY,
        JWT_SIGNING_KEY="jwt-key-from-the-secret-store-0123456789abcdefghij",
        WEBHOOK_SIGNING_SECRET="webhook-key-shared-with-receivers",
    )

    assert shown["jwt"] == "jwt-key-from-the-secret-store-0123456789abcdefghij"
    assert shown["webhook"] == "webhook-key-shared-with-receivers"


@pytest.mark.parametrize("same_as", ["SECRET_KEY", "JWT_SIGNING_KEY"])
def test_a_webhook_key_equal_to_a_signing_key_is_refused(same_as):
    env = {"SECRET_KEY": A_GOOD_KEY, "JWT_SIGNING_KEY": "j" + A_GOOD_KEY}
    env["WEBHOOK_SIGNING_SECRET"] = env[same_as]

    result = run_django("import django; django.setup()", **env)

    assert result.returncode != 0
    assert "WEBHOOK_SIGNING_SECRET must differ from SECRET_KEY and JWT_SIGNING_KEY" in result.stderr


# --- check --deploy ----------------------------------------------------------------------------------

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": A_GOOD_KEY,
    "ALLOWED_HOSTS": "wipsie.example.com",
    "DATABASE_URL": "postgres://wipsie:pw@db.example:5432/wipsie",
}


def check_deploy(**env: str) -> subprocess.CompletedProcess:
    clean = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "wipsie_site.settings", **env}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_check_deploy_without_warnings():
    result = check_deploy(**PRODUCTION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stderr


def test_check_deploy_would_catch_hsts_and_the_ssl_redirect_turned_off():
    """The test above can fail: the same check with them off reports W004 and W008."""
    result = check_deploy(**PRODUCTION, SECURE_HSTS_SECONDS="0", SECURE_SSL_REDIRECT="false")

    assert result.returncode != 0
    assert "security.W004" in result.stderr
    assert "security.W008" in result.stderr


def test_production_redirects_to_https_and_sends_hsts_by_default():
    shown = keys(SECRET_KEY=A_GOOD_KEY)

    assert shown["ssl_redirect"] is True
    assert shown["hsts"] == 365 * 24 * 3600


def test_plain_http_is_redirected_except_the_probes_and_a_request_through_the_tls_proxy(settings):
    from django.test import Client

    settings.SECURE_SSL_REDIRECT = True
    client = Client()  # a new client builds its middleware with the setting on

    redirected = client.get("/sqs/queues")
    assert redirected.status_code == 301
    assert redirected["Location"] == "https://testserver/sqs/queues"
    assert client.get("/health/live").status_code == 200
    assert client.get("/sqs/queues", HTTP_X_FORWARDED_PROTO="https").status_code == 401
