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


# --- The sliced count itself, on a clock the test moves -----------------------------------------


class Clock:
    def __init__(self, now: float = 1_000_020.0):  # 20 s into a minute
        self.now = now

    def __call__(self) -> float:
        return self.now


def user_throttle(rate: str, clock: Clock, cache_backend=None):
    throttle = throttling.UserRateThrottle.__new__(throttling.UserRateThrottle)
    throttle.rate = rate
    throttle.num_requests, throttle.duration = throttle.parse_rate(rate)
    throttle.timer = clock
    if cache_backend is not None:
        throttle.cache = cache_backend
    return throttle


class FakeRequest:
    class user:  # noqa: N801 - stands in for request.user
        is_authenticated = True
        pk = "sliced-test"


def ask(throttle) -> bool:
    return throttle.allow_request(FakeRequest, None)


def test_the_limit_holds_over_the_period_and_retry_after_is_when_it_lets_one_through():
    cache.clear()
    clock = Clock()
    throttle = user_throttle("5/minute", clock)
    assert [ask(throttle) for _ in range(6)] == [True] * 5 + [False]

    wait = throttle.wait()
    assert 0 < wait <= 60
    clock.now += wait - 0.01
    assert not ask(throttle)  # a moment before Retry-After: still refused
    clock.now += 0.02
    assert ask(throttle)  # just after: one more fits


def test_requests_spread_over_the_period_leave_as_their_slice_leaves_the_window():
    cache.clear()
    start = 999_960.0  # the start of a minute, and of a slice
    clock = Clock(start)
    throttle = user_throttle("3/minute", clock)
    for second in (0, 20, 40):
        clock.now = start + second
        assert ask(throttle)
    clock.now = start + 59.9
    assert not ask(throttle)  # the request at 0 s still counts
    clock.now = start + 60.0  # its slice has left the window
    assert ask(throttle)
    assert not ask(throttle)


def test_the_cost_per_request_does_not_grow_with_the_rate():
    """DRF's own throttle stores one timestamp per request of the period; this stores counters."""
    cache.clear()
    clock = Clock()
    throttle = user_throttle("100000/minute", clock)
    for _ in range(2000):
        assert ask(throttle)
        clock.now += 0.01
    stored = [
        cache.get(f"{throttle.key}:{n}") for n in range(int(clock.now // 6) - 9, int(clock.now // 6) + 1)
    ]
    assert sum(v for v in stored if v) == 2000
    assert all(isinstance(v, int) for v in stored if v is not None)


def test_the_counters_are_shared_through_redis_when_the_cache_is_redis():
    """Two processes (two cache clients here) count against one limit."""
    from django.core.cache.backends.redis import RedisCache

    location = "redis://127.0.0.1:6379/15"
    first, second = (RedisCache(location, {"KEY_PREFIX": f"wipsie-test-{uuid.uuid4()}"}) for _ in range(2))
    second.key_prefix = first.key_prefix
    try:
        first.get("probe")
    except Exception:  # noqa: BLE001 - any connection error
        pytest.skip("no Redis on 127.0.0.1:6379")
    clock = Clock()
    one, other = user_throttle("4/minute", clock, first), user_throttle("4/minute", clock, second)
    assert [ask(one), ask(other), ask(one), ask(other), ask(one), ask(other)] == [True] * 4 + [False] * 2


class RecordingCache:
    """The cache, with the name of every call made to it (a Redis round trip each, in production)."""

    def __init__(self, backend):
        self.backend, self.calls = backend, []

    def __getattr__(self, name):
        method = getattr(self.backend, name)

        def recorded(*args, **kwargs):
            self.calls.append(name)
            return method(*args, **kwargs)

        return recorded


def test_a_slice_already_counted_costs_one_read_and_one_increment():
    cache.clear()
    recording = RecordingCache(cache)
    throttle = user_throttle("10/minute", Clock(), recording)

    assert ask(throttle)  # the slice's first request creates its counter
    first, recording.calls = recording.calls, []
    assert ask(throttle)

    assert first == ["get_many", "add"]
    assert recording.calls == ["get_many", "incr"]


def test_a_counter_another_request_created_meanwhile_is_incremented():
    cache.clear()
    clock = Clock()
    throttle = user_throttle("10/minute", clock)

    class CreatedMeanwhile(RecordingCache):
        def get_many(self, keys):  # what this request read: nothing yet ...
            found = self.backend.get_many(keys)
            self.backend.add(keys[-1], 1)  # ... then another request created the counter
            return found

    throttle.cache = CreatedMeanwhile(cache)
    assert ask(throttle)

    slice_key = f"{throttle.key}:{int(clock.now // 6)}"
    assert cache.get(slice_key) == 2  # both requests counted, neither lost
