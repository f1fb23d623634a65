"""/metrics: request metrics from django-prometheus, and Wipsie's own."""

import re

import pytest

pytestmark = pytest.mark.django_db


def metric(text: str, name: str, **labels) -> float | None:
    """The value of one sample in Prometheus' text format, or None when absent."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        match = re.match(r"^(\w+)\{(.*)\} (\S+)$", line)
        if match and match[1] == name and ",".join(sorted(match[2].split(","))) == wanted:
            return float(match[3])
    return None


def test_metrics_count_sends_and_report_queue_sizes_and_statuses(api_client, anon_client, sqs):
    before = (
        metric(
            anon_client.get("/metrics").content.decode(),
            "wipsie_messages_sent_total",
            queue="default",
            source="api",
        )
        or 0
    )

    api_client.post("/sqs/send", {"queue_name": "default", "message": {"m": 1}}, format="json")
    api_client.post("/sqs/send", {"queue_name": "default", "message": {"m": 2}}, format="json")
    text = anon_client.get("/metrics").content.decode()

    assert metric(text, "wipsie_messages_sent_total", queue="default", source="api") == before + 2
    assert metric(text, "sqs_queue_size", queue_name="default", kind="visible") == 2
    assert metric(text, "sqs_queue_size", queue_name="notifications", kind="dead_letters") == 0
    assert metric(text, "wipsie_messages", queue="default", status="sent") == 2
    assert "django_http_requests_total_by_view_transport_method_total" in text


def test_metrics_still_answer_when_sqs_is_down(anon_client, settings, sqs):
    from sqs_app import sqs_client

    settings.AWS_ENDPOINT_URL_SQS = "http://127.0.0.1:9"
    settings.SQS_CONNECT_TIMEOUT_SECONDS = 0.5
    sqs_client.reset()

    response = anon_client.get("/metrics")

    assert response.status_code == 200
    assert metric(response.content.decode(), "sqs_queue_size", queue_name="default", kind="visible") is None
    sqs_client.reset()
