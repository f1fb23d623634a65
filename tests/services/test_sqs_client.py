"""Unit tests of sqs_client against moto's in-process mock (no server, no HTTP)."""

import json
from unittest import mock

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from sqs_app import errors, sqs_client
from sqs_app.queues import all_queue_specs
from tests.helpers import closed_endpoint


@pytest.fixture
def aws(settings, monkeypatch):
    """moto's in-process SQS, with Wipsie's client pointed at AWS itself (which moto intercepts)."""
    settings.AWS_ENDPOINT_URL_SQS = None
    # boto3 reads these itself; the moto server fixture may have set them for the session.
    monkeypatch.delenv("AWS_ENDPOINT_URL_SQS", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        sqs_client.reset()
        yield
    sqs_client.reset()


@pytest.fixture
def queues(aws):
    """The queues provisioned, then the URL cache forgotten, as in a fresh process."""
    sqs_client.ensure_all_queues()
    sqs_client.reset()


def count_calls(client, operation: str) -> list:
    """A list that grows by one for every `operation` call the client makes."""
    calls = []
    client.meta.events.register(f"before-call.sqs.{operation}", lambda **kwargs: calls.append(1))
    return calls


def physical_names() -> set[str]:
    names = set()
    for spec in all_queue_specs():
        names |= {spec.physical_name, spec.dlq_name}
    return names


# --- The client ---------------------------------------------------------------------------


def test_it_builds_one_client_per_process_and_reuses_it(aws):
    with mock.patch.object(boto3.session, "Session", wraps=boto3.session.Session) as sessions:
        first = sqs_client.get_client()
        second = sqs_client.get_client()

    assert first is second
    assert sessions.call_count == 1


def test_it_builds_a_new_client_after_a_fork(aws):
    parent = sqs_client.get_client()

    with mock.patch.object(sqs_client.os, "getpid", return_value=-1):
        child = sqs_client.get_client()

    assert child is not parent


def test_reset_forgets_the_client(aws):
    first = sqs_client.get_client()
    sqs_client.reset()

    assert sqs_client.get_client() is not first


def test_it_uses_the_configured_region_and_timeouts(aws, settings):
    settings.AWS_REGION = "eu-central-1"
    settings.SQS_CONNECT_TIMEOUT_SECONDS = 1.5
    sqs_client.reset()

    client = sqs_client.get_client()

    assert client.meta.region_name == "eu-central-1"
    assert client.meta.config.connect_timeout == 1.5
    assert client.meta.config.max_pool_connections == settings.SQS_MAX_POOL_CONNECTIONS


# --- Queue URLs ------------------------------------------------------------------------------


def test_it_resolves_a_queue_url_once_per_process(queues):
    calls = count_calls(sqs_client.get_client(), "GetQueueUrl")

    first = sqs_client.queue_url("default")
    second = sqs_client.queue_url("default")

    assert first == second
    assert first.endswith("/wipsie-default")
    assert len(calls) == 1


def test_it_caches_each_queue_and_its_dlq_separately(queues):
    calls = count_calls(sqs_client.get_client(), "GetQueueUrl")

    urls = {sqs_client.queue_url("notifications"), sqs_client.dlq_url("notifications")}
    sqs_client.queue_url("notifications")
    sqs_client.dlq_url("notifications")

    assert len(urls) == 2
    assert sqs_client.dlq_url("notifications").endswith("/wipsie-notifications-dlq")
    assert len(calls) == 2


def test_sending_uses_the_cached_url(queues):
    calls = count_calls(sqs_client.get_client(), "GetQueueUrl")

    for _ in range(3):
        sqs_client.send_message(queue="default", body="{}")

    assert len(calls) == 1


# --- Messages ---------------------------------------------------------------------------------


def test_it_sends_and_receives_a_message_with_attributes(queues):
    message_id = sqs_client.send_message(
        queue="default",
        body='{"a": 1}',
        attributes={"priority": {"DataType": "String", "StringValue": "high"}},
    )

    [received] = sqs_client.receive_messages(queue="default", max_messages=10)

    assert received.message_id == message_id
    assert received.body == '{"a": 1}'
    assert received.attributes == {"priority": {"DataType": "String", "StringValue": "high"}}
    assert received.system_attributes["ApproximateReceiveCount"] == "1"
    assert received.receipt_handle


def test_it_sends_a_batch_in_one_call(queues):
    calls = count_calls(sqs_client.get_client(), "SendMessageBatch")

    results = sqs_client.send_message_batch(
        queue="default", entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(10)]
    )

    assert len(calls) == 1
    assert sorted(r.entry_id for r in results) == [str(i) for i in range(10)]
    assert all(r.message_id and r.error_code is None for r in results)


def test_it_deletes_a_message_by_receipt_handle(queues):
    sqs_client.send_message(queue="default", body="x")
    [received] = sqs_client.receive_messages(queue="default")

    sqs_client.delete_message(queue="default", receipt_handle=received.receipt_handle)

    assert sqs_client.queue_depths("default") == {"visible": 0, "in_flight": 0, "delayed": 0}


def test_released_messages_are_visible_again_at_once(queues):
    sqs_client.send_message(queue="default", body="x")
    [received] = sqs_client.receive_messages(queue="default", visibility_timeout=300)
    assert sqs_client.receive_messages(queue="default") == []

    sqs_client.release_messages(queue="default", receipt_handles=[received.receipt_handle])

    assert [m.body for m in sqs_client.receive_messages(queue="default")] == ["x"]


# --- Errors, translated -------------------------------------------------------------------------


def test_a_missing_queue_is_queue_not_provisioned(aws):
    with pytest.raises(errors.QueueNotProvisioned) as caught:
        sqs_client.send_message(queue="default", body="x")

    assert caught.value.status_code == 503
    assert caught.value.details["queue"] == "default"
    assert caught.value.details["sqs_error_code"] in {
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    }


def test_a_queue_deleted_after_its_url_was_cached_is_queue_not_provisioned(queues):
    url = sqs_client.queue_url("default")
    sqs_client.get_client().delete_queue(QueueUrl=url)

    with pytest.raises(errors.QueueNotProvisioned):
        sqs_client.receive_messages(queue="default")


@pytest.mark.parametrize("code", ["ThrottlingException", "RequestThrottled", "OverLimit"])
def test_throttling_is_sqs_throttled(queues, code):
    sqs_client.queue_url("default")  # cached before the stub takes over
    with Stubber(sqs_client.get_client()) as stub:
        stub.add_client_error("send_message", service_error_code=code, http_status_code=400)
        with pytest.raises(errors.SQSThrottled) as caught:
            sqs_client.send_message(queue="default", body="x")

    assert caught.value.status_code == 503
    assert caught.value.details == {"queue": "default", "sqs_error_code": code}


def test_an_unknown_sqs_error_is_sqs_request_failed_with_its_message(queues):
    sqs_client.queue_url("default")
    with Stubber(sqs_client.get_client()) as stub:
        stub.add_client_error(
            "send_message", service_error_code="KmsDisabled", service_message="KMS key is disabled"
        )
        with pytest.raises(errors.SQSRequestFailed) as caught:
            sqs_client.send_message(queue="default", body="x")

    assert caught.value.status_code == 502
    assert caught.value.message == "Amazon SQS rejected the request: KMS key is disabled"


def test_an_invalid_receipt_handle_is_invalid_receipt_handle(queues):
    sqs_client.send_message(queue="default", body="x")

    with pytest.raises(errors.InvalidReceiptHandle) as caught:
        sqs_client.delete_message(queue="default", receipt_handle="not-a-receipt-handle")

    assert caught.value.status_code == 400
    assert caught.value.details["queue"] == "default"


def test_a_generic_invalid_parameter_on_delete_is_an_invalid_receipt_handle(queues):
    sqs_client.queue_url("default")
    with Stubber(sqs_client.get_client()) as stub:
        stub.add_client_error("delete_message", service_error_code="InvalidParameterValue")
        with pytest.raises(errors.InvalidReceiptHandle):
            sqs_client.delete_message(queue="default", receipt_handle="x")


def test_an_unreachable_endpoint_is_sqs_unavailable(settings):
    settings.AWS_ENDPOINT_URL_SQS = closed_endpoint()
    settings.SQS_CONNECT_TIMEOUT_SECONDS = 0.5
    settings.SQS_READ_TIMEOUT_SECONDS = 1
    sqs_client.reset()
    try:
        with pytest.raises(errors.SQSUnavailable) as caught:
            sqs_client.send_message(queue="default", body="x")
    finally:
        sqs_client.reset()

    assert caught.value.status_code == 503
    assert caught.value.details == {"queue": "default", "reason": "EndpointConnectionError"}


def test_missing_credentials_are_sqs_unavailable(settings, monkeypatch, tmp_path):
    settings.AWS_ACCESS_KEY_ID = None
    settings.AWS_SECRET_ACCESS_KEY = None
    settings.AWS_ENDPOINT_URL_SQS = closed_endpoint()
    # Leave boto3's credential chain nothing to find: no environment, no files, no metadata.
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    sqs_client.reset()
    try:
        with pytest.raises(errors.SQSUnavailable) as caught:
            sqs_client.send_message(queue="default", body="x")
    finally:
        sqs_client.reset()

    assert "No AWS credentials" in caught.value.message
    assert caught.value.details == {"queue": "default"}


def test_a_refused_health_ping_is_a_wipsie_error(queues):
    sqs_client.queue_url("default")
    with Stubber(sqs_client.get_client()) as stub:
        stub.add_client_error("get_queue_attributes", service_error_code="AccessDenied", http_status_code=403)
        with pytest.raises(errors.SQSRequestFailed) as caught:
            sqs_client.ping()

    assert caught.value.details == {"queue": "default", "sqs_error_code": "AccessDenied"}


# --- Provisioning -------------------------------------------------------------------------------


def queue_attributes(name: str) -> dict:
    client = sqs_client.get_client()
    url = client.get_queue_url(QueueName=name)["QueueUrl"]
    return client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def test_ensure_all_queues_creates_each_queue_with_a_redrive_policy_to_its_dlq(aws, settings):
    provisioned = sqs_client.ensure_all_queues()

    names = {url.rsplit("/", 1)[1] for url in sqs_client.get_client().list_queues()["QueueUrls"]}
    assert physical_names() <= names
    assert {p.logical_name for p in provisioned} >= {
        "default",
        "data_polling",
        "task_processing",
        "notifications",
    }
    for spec in all_queue_specs():
        policy = json.loads(queue_attributes(spec.physical_name)["RedrivePolicy"])
        assert policy["deadLetterTargetArn"] == queue_attributes(spec.dlq_name)["QueueArn"]
        assert policy["deadLetterTargetArn"].endswith(f":{spec.physical_name}-dlq")
        assert int(policy["maxReceiveCount"]) == settings.SQS_MAX_RECEIVE_COUNT


def test_ensure_all_queues_is_idempotent(aws):
    first = sqs_client.ensure_all_queues()
    sqs_client.send_message(queue="default", body="still here")

    second = sqs_client.ensure_all_queues()

    assert second == first
    assert len(sqs_client.get_client().list_queues()["QueueUrls"]) == 2 * len(first)
    assert [m.body for m in sqs_client.receive_messages(queue="default")] == ["still here"]


def test_ensure_all_queues_updates_an_outdated_redrive_policy(aws, settings):
    sqs_client.ensure_all_queues()
    settings.SQS_MAX_RECEIVE_COUNT = 9

    sqs_client.ensure_all_queues()

    policy = json.loads(queue_attributes("wipsie-default")["RedrivePolicy"])
    assert int(policy["maxReceiveCount"]) == 9


def test_ensure_all_queues_fills_the_url_cache(aws):
    sqs_client.ensure_all_queues()
    calls = count_calls(sqs_client.get_client(), "GetQueueUrl")

    sqs_client.queue_url("default")
    sqs_client.dlq_url("default")

    assert calls == []
