"""/metrics: the spec's metric names, queue gauges cached per interval, access by token or address."""

import re
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from sqs_app import metrics_views, selectors, sqs_client
from sqs_app.models import Message
from sqs_app.services import message_send
from tasks_app.consumers import consumers_record
from tests.helpers import make_sqs_unreachable

from .commands.conftest import dead_lettered

pytestmark = pytest.mark.django_db


def metric(text: str, name: str, **labels) -> float | None:
    """The value of one sample in Prometheus' text format, or None when absent."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        match = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if match and match[1] == name and ",".join(sorted((match[2] or "").split(","))) == wanted:
            return float(match[3])
    return None


@pytest.fixture(autouse=True)
def fresh_registry(settings):
    settings.METRICS_CACHE_SECONDS = 0
    metrics_views.reset_registry()
    yield
    metrics_views.reset_registry()


def scrape(client, **headers) -> str:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    return response.content.decode()


def test_api_requests_are_counted_by_method_and_route_pattern(api_client, anon_client, sqs):
    from django.urls import resolve

    route = "/" + resolve("/sqs/receive/default").route  # e.g. /sqs/receive/<segment:queue_name>
    assert "<" in route  # a pattern, not the path: one series for every queue name
    before = metric(scrape(anon_client), "api_requests_total", method="GET", endpoint=route)

    api_client.get("/sqs/receive/default")
    api_client.get("/sqs/receive/notifications")
    text = scrape(anon_client)

    assert metric(text, "api_requests_total", method="GET", endpoint=route) == (before or 0) + 2
    assert metric(text, "api_request_duration_seconds_count", method="GET", endpoint=route)
    assert metric(text, "api_requests_total", method="GET", endpoint="/sqs/receive/default") is None
    assert metric(text, "api_requests_total", method="GET", endpoint="/metrics") >= 1


def test_an_unknown_path_is_one_label_not_one_per_path(anon_client):
    anon_client.get("/no/such/path/1")
    anon_client.get("/no/such/path/2")

    assert metric(scrape(anon_client), "api_requests_total", method="GET", endpoint="unmatched") >= 2


def test_queue_gauges_have_one_label_each_and_the_dlq_and_age_their_own(anon_client, sqs):
    message_send(queue="default", message={"m": 1})
    message_send(queue="default", message={"m": 2})
    dead_lettered("one")

    text = scrape(anon_client)

    assert metric(text, "sqs_queue_size", queue_name="default") == 2
    assert metric(text, "sqs_queue_size", queue_name="celery") == 0
    assert metric(text, "sqs_queue_in_flight", queue_name="default") == 0
    assert metric(text, "sqs_queue_delayed", queue_name="default") == 0
    assert metric(text, "sqs_dlq_size", queue_name="notifications") == 1
    assert metric(text, "sqs_queue_oldest_message_age_seconds", queue_name="default") >= 0
    assert metric(text, "sqs_queue_oldest_message_age_seconds", queue_name="celery") is None
    assert metric(text, "wipsie_messages_open", queue="default", status="sent") == 2
    assert metric(text, "wipsie_sqs_up") == 1
    assert metric(text, "wipsie_messages_sent_total", queue="default", source="api") >= 2


def test_queue_gauges_are_read_from_sqs_once_per_interval_however_often_scraped(anon_client, sqs, settings):
    settings.METRICS_CACHE_SECONDS = 3600
    with mock.patch.object(sqs_client, "queue_depths", wraps=sqs_client.queue_depths) as depths:
        first = scrape(anon_client)
        message_send(queue="default", message={"m": 1})
        second = scrape(anon_client)

    assert depths.call_count == 10  # five queues and their DLQs, once
    assert metric(first, "sqs_queue_size", queue_name="default") == 0
    assert metric(second, "sqs_queue_size", queue_name="default") == 0  # still the cached read


def test_history_gauges_read_only_open_messages(anon_client, sqs):
    Message.objects.create(queue="default", sqs_message_id="done", body={}, status="succeeded")
    with mock.patch.object(
        selectors.Message.objects, "filter", wraps=selectors.Message.objects.filter
    ) as query:
        text = scrape(anon_client)

    assert query.call_args.kwargs["status__in"] == selectors.OPEN_STATUSES
    assert metric(text, "wipsie_messages_open", queue="default", status="succeeded") is None


def test_metrics_still_answer_when_sqs_is_down(anon_client, settings, sqs):
    make_sqs_unreachable(settings)
    consumers_record(
        hostname="w", pid=1, started_at=timezone.now(), last_polls={"notifications": timezone.now()}
    )

    text = scrape(anon_client)

    assert metric(text, "sqs_queue_size", queue_name="default") is None
    assert metric(text, "wipsie_sqs_up") == 0
    assert metric(text, "wipsie_queue_consumers", queue_name="notifications") == 1  # from the database


def test_each_consumed_queue_has_its_consumer_count_and_last_poll_age(anon_client, sqs):
    now = timezone.now()
    for pid, seconds_ago in ((1, 3), (2, 700)):
        consumers_record(
            hostname="w",
            pid=pid,
            started_at=now,
            last_polls={"notifications": now - timedelta(seconds=seconds_ago)},
        )
    consumers_record(
        hostname="w", pid=3, started_at=now, last_polls={"data_polling": now - timedelta(seconds=400)}
    )

    text = scrape(anon_client)

    assert metric(text, "wipsie_queue_consumers", queue_name="notifications") == 2
    assert (
        3 <= metric(text, "wipsie_queue_last_poll_age_seconds", queue_name="notifications") < 60
    )  # the freshest
    assert 400 <= metric(text, "wipsie_queue_last_poll_age_seconds", queue_name="data_polling") < 460
    assert metric(text, "wipsie_queue_consumers", queue_name="default") is None  # nobody consumes it
    assert metric(text, "wipsie_queue_last_poll_age_seconds", queue_name="default") is None


def test_by_default_only_loopback_may_scrape(anon_client):
    assert anon_client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403
    assert anon_client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200


def test_a_token_lets_a_scraper_in_from_anywhere(anon_client, settings):
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    settings.METRICS_ALLOWED_NETWORKS = []

    refused = anon_client.get("/metrics", REMOTE_ADDR="10.1.2.3")
    wrong = anon_client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer nope")
    right = anon_client.get(
        "/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token"
    )

    assert refused.status_code == wrong.status_code == 403
    assert refused.json()["error"]["code"] == "PERMISSION_DENIED"
    assert right.status_code == 200


def test_an_address_allow_list_admits_its_networks_only(anon_client, settings):
    import ipaddress

    settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("10.0.0.0/8")]

    assert anon_client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert anon_client.get("/metrics", REMOTE_ADDR="192.168.1.1").status_code == 403
    assert anon_client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_a_bad_allow_list_is_a_configuration_error():
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "wipsie_site.settings_test",
        "METRICS_ALLOWED_IPS": "10.0.0.0/33",
    }
    result = subprocess.run([sys.executable, "manage.py", "check"], capture_output=True, text=True, env=env)

    assert result.returncode == 2
    assert "METRICS_ALLOWED_IPS" in result.stderr
