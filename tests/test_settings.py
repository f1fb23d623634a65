"""Settings read from the environment (wipsie_site.settings).

The helpers are tested in this process; whole-module behaviour (refusing to
start, the database pool) in a fresh interpreter with a clean environment.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from kombu.utils.url import url_to_parts

from wipsie_site import settings as wipsie_settings

BASE_DIR = Path(wipsie_settings.__file__).resolve().parent.parent
A_GOOD_KEY = "a-real-secret-for-this-test-only-long-and-varied-enough-1234567890"

SHOW_SETTINGS = """
import json, django
from django.conf import settings
django.setup()
db = settings.DATABASES["default"]
print(json.dumps({
    "engine": db["ENGINE"],
    "options": db.get("OPTIONS", {}),
    "conn_max_age": db.get("CONN_MAX_AGE"),
    "broker": settings.CELERY_BROKER_URL,
    "cors": settings.CORS_ALLOWED_ORIGINS,
}))
"""


def run_django(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter with the real settings and only these variables."""
    clean = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "wipsie_site.settings", **env}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=clean, capture_output=True, text=True, timeout=60
    )


def shown_settings(**env: str) -> dict:
    result = run_django(SHOW_SETTINGS, SECRET_KEY=A_GOOD_KEY, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- List settings (CORS_ORIGINS and friends) ---------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('["http://localhost:4200"]', ["http://localhost:4200"]),
        ('["https://a.example", "https://b.example"]', ["https://a.example", "https://b.example"]),
        ("https://a.example,https://b.example", ["https://a.example", "https://b.example"]),
        (" https://a.example , https://b.example, ", ["https://a.example", "https://b.example"]),
        ("https://only.example", ["https://only.example"]),
        ("[]", []),
    ],
)
def test_cors_origins_reads_the_json_list_and_the_comma_forms(monkeypatch, raw, expected):
    monkeypatch.setenv("CORS_ORIGINS", raw)

    assert wipsie_settings.env_list("CORS_ORIGINS", ["http://default"]) == expected


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_an_absent_or_empty_list_setting_keeps_its_default(monkeypatch, raw):
    if raw is None:
        monkeypatch.delenv("CORS_ORIGINS", raising=False)
    else:
        monkeypatch.setenv("CORS_ORIGINS", raw)

    assert wipsie_settings.env_list("CORS_ORIGINS", ["http://localhost:4200"]) == ["http://localhost:4200"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('["http://a.example",', "CORS_ORIGINS is not a valid JSON list"),
        ("[1, 2]", "CORS_ORIGINS must be a JSON list of strings"),
    ],
)
def test_a_malformed_list_setting_fails_loudly(monkeypatch, raw, message):
    monkeypatch.setenv("CORS_ORIGINS", raw)

    with pytest.raises(ImproperlyConfigured, match=message):
        wipsie_settings.env_list("CORS_ORIGINS", [])


# --- The Celery broker URL --------------------------------------------------------------------


@pytest.fixture
def aws_settings(monkeypatch):
    def configure(key=None, secret=None, endpoint=None):
        monkeypatch.setattr(wipsie_settings, "AWS_ACCESS_KEY_ID", key)
        monkeypatch.setattr(wipsie_settings, "AWS_SECRET_ACCESS_KEY", secret)
        monkeypatch.setattr(wipsie_settings, "AWS_ENDPOINT_URL_SQS", endpoint)

    return configure


def test_the_broker_url_quotes_secrets_with_slash_and_plus(aws_settings):
    aws_settings(key="AKIDEXAMPLE", secret="wJal/rXUt+nFEMI/K7MDENG+bPxRfiCY")

    url = wipsie_settings.derive_broker_url()

    assert url == "sqs://AKIDEXAMPLE:wJal%2FrXUt%2BnFEMI%2FK7MDENG%2BbPxRfiCY@"
    parts = url_to_parts(url)
    assert (parts.username, parts.password) == ("AKIDEXAMPLE", "wJal/rXUt+nFEMI/K7MDENG+bPxRfiCY")


def test_the_broker_url_takes_host_and_port_from_the_sqs_endpoint(aws_settings):
    aws_settings(key="testing", secret="a/b+c", endpoint="http://localhost:4566/")

    url = wipsie_settings.derive_broker_url()

    assert url == "sqs://testing:a%2Fb%2Bc@localhost:4566"
    parts = url_to_parts(url)
    assert (parts.hostname, parts.port, parts.password) == ("localhost", 4566, "a/b+c")


def test_the_broker_url_without_credentials_leaves_them_to_boto3(aws_settings):
    aws_settings()
    assert wipsie_settings.derive_broker_url() == "sqs://"

    aws_settings(endpoint="http://127.0.0.1:9324")
    assert wipsie_settings.derive_broker_url() == "sqs://127.0.0.1:9324"


def test_the_broker_url_and_cors_origins_are_read_from_the_environment_at_startup():
    shown = shown_settings(
        AWS_ACCESS_KEY_ID="AKID",
        AWS_SECRET_ACCESS_KEY="se/cr+et",
        AWS_ENDPOINT_URL_SQS="http://sqs.local:9324",
        CORS_ORIGINS='["http://localhost:4200"]',
    )

    assert shown["broker"] == "sqs://AKID:se%2Fcr%2Bet@sqs.local:9324"
    assert shown["cors"] == ["http://localhost:4200"]


# --- Refusing to start insecurely ------------------------------------------------------------------


def test_it_refuses_to_start_with_debug_off_and_the_default_secret_key():
    result = run_django("import django; django.setup()", DEBUG="false")

    assert result.returncode != 0
    assert "django.core.exceptions.ImproperlyConfigured: SECRET_KEY is not set." in result.stderr
    assert "set DEBUG=true for local development" in result.stderr


def test_it_starts_with_the_default_secret_key_when_debug_is_on():
    result = run_django("import django; django.setup(); print('started')", DEBUG="true")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "started"


# --- The database pool -------------------------------------------------------------------------------


def test_a_postgres_url_gets_a_psycopg_pool_sized_by_pool_size_and_max_overflow():
    shown = shown_settings(
        DATABASE_URL="postgres://wipsie:pw@db.example:5432/wipsie",
        DATABASE_POOL_SIZE="4",
        DATABASE_MAX_OVERFLOW="6",
    )

    assert shown["engine"] == "django.db.backends.postgresql"
    assert shown["options"]["pool"] == {"min_size": 4, "max_size": 10, "timeout": 10.0}
    assert shown["conn_max_age"] == 0


def test_by_default_the_pool_keeps_one_connection_and_grows_to_the_servers_threads():
    """A request holds one connection at most: more than the threads would never be used."""
    default = shown_settings(DATABASE_URL="postgres://wipsie:pw@db.example:5432/wipsie")
    eight_threads = shown_settings(
        DATABASE_URL="postgres://wipsie:pw@db.example:5432/wipsie", GUNICORN_THREADS="8"
    )

    assert default["options"]["pool"] == {"min_size": 1, "max_size": 4, "timeout": 10.0}
    assert eight_threads["options"]["pool"]["max_size"] == 8


@pytest.mark.parametrize("seconds", ["61", "-1"])
def test_the_user_cache_may_not_outlast_sixty_seconds(seconds):
    result = run_django(
        "import django; django.setup()",
        SECRET_KEY=A_GOOD_KEY,
        AUTH_USER_CACHE_SECONDS=seconds,
    )

    assert result.returncode != 0
    assert "AUTH_USER_CACHE_SECONDS must be between 0 and 60" in result.stderr
