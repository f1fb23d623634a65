"""Throttles hold: a forged X-Forwarded-For does not reset the anonymous limit; a dead cache is not a 500."""

import uuid

import pytest
from django.core.cache import cache

from sqs_app import throttling

pytestmark = pytest.mark.django_db


@pytest.fixture
def anon_limit_of_three(monkeypatch):
    rates = {"anon": "3/minute", "user": "1000/minute"}
    monkeypatch.setattr(throttling.AnonRateThrottle, "THROTTLE_RATES", rates)
    monkeypatch.setattr(throttling.UserRateThrottle, "THROTTLE_RATES", rates)
    cache.clear()
    yield
    cache.clear()


def login(client, **headers):
    return client.post("/api/token/", {"username": "nobody", "password": "guess"}, format="json", **headers)


def random_address() -> str:
    return f"203.0.113.{uuid.uuid4().int % 250 + 1}, 198.51.100.{uuid.uuid4().int % 250 + 1}"


def test_random_forwarded_for_headers_do_not_bypass_the_anonymous_throttle(anon_client, anon_limit_of_three):
    statuses = [login(anon_client, HTTP_X_FORWARDED_FOR=random_address()).status_code for _ in range(5)]

    assert statuses == [401, 401, 401, 429, 429]


def test_behind_one_proxy_the_client_is_the_address_the_proxy_appended(
    anon_client, anon_limit_of_three, settings, monkeypatch
):
    from rest_framework.settings import api_settings

    monkeypatch.setattr(api_settings, "NUM_PROXIES", 1)
    # The client forges the start of the header; the proxy appends what it saw.
    forged = [login(anon_client, HTTP_X_FORWARDED_FOR=f"10.9.9.{n}, 192.0.2.7").status_code for n in range(4)]
    other_client = login(anon_client, HTTP_X_FORWARDED_FOR="192.0.2.8").status_code

    assert forged == [401, 401, 401, 429]
    assert other_client == 401


def test_the_default_trusts_no_proxy():
    from django.conf import settings

    assert settings.REST_FRAMEWORK["NUM_PROXIES"] == 0


def test_an_unreachable_redis_cache_lets_requests_through_instead_of_failing_them(anon_client, settings):
    from tests.helpers import closed_endpoint

    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": closed_endpoint().replace("http://", "redis://"),
        }
    }
    from django.core.cache import caches

    with pytest.raises(Exception, match="Connection refused|Error"):
        caches["default"].get("probe")  # the redis client is installed and really tries

    response = login(anon_client)

    assert response.status_code == 401
