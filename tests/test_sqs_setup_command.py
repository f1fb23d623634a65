"""manage.py sqs_setup: provisions the queues on the configured SQS, idempotently."""

import json
import urllib.request
from io import StringIO

import boto3
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from sqs_app import sqs_client
from sqs_app.queues import all_queue_specs, celery_queue_spec
from tests.helpers import make_sqs_unreachable

# sqs_setup writes an audit entry.
pytestmark = pytest.mark.django_db

WIPSIE_QUEUES = {
    "wipsie-default",
    "wipsie-default-dlq",
    "wipsie-data-polling",
    "wipsie-data-polling-dlq",
    "wipsie-task-processing",
    "wipsie-task-processing-dlq",
    "wipsie-notifications",
    "wipsie-notifications-dlq",
}


@pytest.fixture
def empty_sqs(moto_endpoint):
    """The moto server with no queues at all (the `sqs` fixture would provision them)."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST"))
    sqs_client.reset()
    client = boto3.client(
        "sqs",
        region_name=settings.AWS_REGION,
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    yield client
    sqs_client.reset()


def queue_names(client) -> set[str]:
    return {url.rsplit("/", 1)[1] for url in client.list_queues().get("QueueUrls", [])}


def setup_output() -> str:
    out = StringIO()
    call_command("sqs_setup", stdout=out)
    return out.getvalue()


def celery_queues() -> set[str]:
    spec = celery_queue_spec()
    return {spec.physical_name, spec.dlq_name}


def test_it_creates_the_four_queues_and_their_dead_letter_queues(empty_sqs):
    assert queue_names(empty_sqs) == set()

    output = setup_output()

    # The eight Wipsie queues, and Celery's own task queue with its DLQ beside them.
    assert queue_names(empty_sqs) == WIPSIE_QUEUES | celery_queues()
    assert {spec.physical_name for spec in all_queue_specs()} <= queue_names(empty_sqs)
    assert "5 queues ready." in output
    for name in ["default", "data_polling", "task_processing", "notifications"]:
        assert name in output


def test_every_queue_dead_letters_to_its_own_dlq(empty_sqs):
    setup_output()

    for spec in all_queue_specs():
        url = empty_sqs.get_queue_url(QueueName=spec.physical_name)["QueueUrl"]
        attributes = empty_sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
        policy = json.loads(attributes["Attributes"]["RedrivePolicy"])
        assert policy["deadLetterTargetArn"].endswith(f":{spec.dlq_name}")
        assert int(policy["maxReceiveCount"]) == settings.SQS_MAX_RECEIVE_COUNT


def test_running_it_again_changes_nothing_and_keeps_the_messages(empty_sqs):
    first = setup_output()
    url = empty_sqs.get_queue_url(QueueName="wipsie-default")["QueueUrl"]
    empty_sqs.send_message(QueueUrl=url, MessageBody="keep me")

    second = setup_output()

    assert second == first
    assert queue_names(empty_sqs) == WIPSIE_QUEUES | celery_queues()
    assert [m["Body"] for m in empty_sqs.receive_message(QueueUrl=url)["Messages"]] == ["keep me"]


def test_an_unreachable_endpoint_is_a_command_error(moto_endpoint, settings):
    make_sqs_unreachable(settings)
    try:
        with pytest.raises(CommandError, match="SQS_UNAVAILABLE"):
            call_command("sqs_setup", stdout=StringIO())
    finally:
        sqs_client.reset()
