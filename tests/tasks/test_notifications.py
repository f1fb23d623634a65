"""The notification family: email (locmem), webhooks (a real local HTTP server), SMS and push (SNS on moto).

Each notification goes through the same validation as in a worker
(`validated_task_data`) before `notification_send`.
"""

import hashlib
import hmac
import json
import smtplib
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from django.conf import settings as django_settings
from django.core.mail.backends.base import BaseEmailBackend

from sqs_app import sqs_client
from sqs_app.schemas import build_standard_message
from tasks_app.errors import PermanentTaskError, TemporaryTaskError
from tasks_app.families import validated_task_data
from tasks_app.notifications import notification_send
from tests.helpers import closed_endpoint, notification


def send(**data) -> tuple[dict, dict]:
    """Validate and deliver a notification; returns (the StandardMessage, the task result)."""
    message = build_standard_message(message=notification(**data), queue="notifications", source="api")
    return message, notification_send(
        message=message, data=validated_task_data(message, task_type="notification")
    )


# --- A webhook receiver on loopback -------------------------------------------------------


class Receiver(ThreadingHTTPServer):
    """Answers every request with `status`, and keeps each request's headers and raw body."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.status = 200
        self.requests: list[tuple[dict, bytes]] = []

    def url(self, path: str = "/hooks/orders") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self):
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append((dict(self.headers), raw))
        self.send_response(self.server.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format, *args):
        pass


@pytest.fixture
def receiver(settings):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = True  # the receiver is on loopback
    settings.OUTBOUND_TIMEOUT_SECONDS = 2
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


# --- SNS on the moto server ------------------------------------------------------------------


@pytest.fixture
def sns(sqs, settings):
    """Wipsie's SNS client pointed at the moto server; yields a plain boto3 SNS client beside it."""
    settings.AWS_ENDPOINT_URL_SNS = sqs
    sqs_client.reset()
    yield boto3.client(
        "sns",
        region_name=settings.AWS_REGION,
        endpoint_url=sqs,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    sqs_client.reset()


def moto_sns_state(endpoint: str) -> dict:
    """What moto's SNS backend holds (SMS sent, platform endpoints and their messages)."""
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json") as response:
        return json.load(response)["sns"]


@pytest.fixture
def platform_endpoint(sns):
    app = sns.create_platform_application(
        Name="wipsie-app", Platform="GCM", Attributes={"PlatformCredential": "server-key"}
    )
    return sns.create_platform_endpoint(
        PlatformApplicationArn=app["PlatformApplicationArn"], Token="device-token-1"
    )["EndpointArn"]


# --- Email --------------------------------------------------------------------------------------


def test_an_email_without_a_template_is_sent_as_it_is(mailoutbox):
    message, result = send()

    assert result == {"notification_type": "email", "recipient": "alice@example.com", "template_id": None}
    [mail] = mailoutbox
    assert mail.to == ["alice@example.com"]
    assert mail.from_email == django_settings.DEFAULT_FROM_EMAIL
    assert mail.subject == "Your export"
    assert mail.body == "It is ready."
    assert mail.alternatives == []
    assert mail.extra_headers["X-Wipsie-Message-Id"] == message["id"]


def test_an_email_without_a_subject_gets_the_default_one(mailoutbox):
    send(subject="")

    assert mailoutbox[0].subject == "Notification from Wipsie"


def test_an_email_with_a_template_is_rendered_with_its_metadata_as_text_and_html(mailoutbox):
    _, result = send(template_id="welcome", body="Your account is ready.", metadata={"name": "Alice"})

    assert result["template_id"] == "welcome"
    [mail] = mailoutbox
    assert mail.body.startswith("Hello Alice,\n")
    assert "Your account is ready." in mail.body
    [(html, mimetype)] = mail.alternatives
    assert mimetype == "text/html"
    assert "<p>Hello Alice,</p>" in html
    assert "<p>Your account is ready.</p>" in html


def test_a_template_without_an_html_version_sends_text_only(mailoutbox):
    send(template_id="default", metadata={"export_id": 7, "format": "csv"})

    [mail] = mailoutbox
    assert mail.body.startswith("It is ready.\n")
    assert "export_id: 7\nformat: csv\n" in mail.body
    assert mail.alternatives == []


def test_the_text_part_of_a_templated_email_is_not_html_escaped(mailoutbox):
    send(template_id="welcome", body="Don't <panic> & relax", metadata={"name": "O'Brien"})

    [mail] = mailoutbox
    assert mail.body.startswith("Hello O'Brien,\n")
    assert "Don't <panic> & relax" in mail.body
    # The HTML part is HTML, so there the same text must be escaped.
    assert "Don&#x27;t &lt;panic&gt; &amp; relax" in mail.alternatives[0][0]


def test_an_unknown_template_is_a_permanent_failure_naming_it(mailoutbox):
    with pytest.raises(PermanentTaskError, match="'no_such_template'"):
        send(template_id="no_such_template")

    assert mailoutbox == []


class RejectingBackend(BaseEmailBackend):
    """An email backend whose server answers with `error` (set by the test)."""

    error: Exception

    def send_messages(self, email_messages):
        raise self.error


@pytest.mark.parametrize(
    "error, expected",
    [
        (smtplib.SMTPRecipientsRefused({"alice@example.com": (550, b"no such user")}), PermanentTaskError),
        (smtplib.SMTPDataError(554, b"message rejected as spam"), PermanentTaskError),
        (smtplib.SMTPDataError(451, b"try again later"), TemporaryTaskError),
        (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), TemporaryTaskError),
    ],
)
def test_an_smtp_answer_is_classified_by_its_code(settings, monkeypatch, error, expected):
    settings.EMAIL_BACKEND = f"{__name__}.RejectingBackend"
    monkeypatch.setattr(RejectingBackend, "error", error, raising=False)

    with pytest.raises(expected):
        send()


def test_an_unreachable_mail_server_is_a_temporary_failure(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = int(closed_endpoint().rsplit(":", 1)[1])
    settings.EMAIL_TIMEOUT = 2

    with pytest.raises(TemporaryTaskError, match="mail server unavailable"):
        send()


# --- Webhooks ------------------------------------------------------------------------------------


def test_a_webhook_posts_the_signed_json_to_the_recipient(receiver, settings):
    settings.WEBHOOK_SIGNING_SECRET = "shared-with-the-receiver"

    message, result = send(
        notification_type="webhook", recipient=receiver.url(), metadata={"order": 42, "note": "café"}
    )

    assert result == {"notification_type": "webhook", "recipient": receiver.url(), "status_code": 200}
    [(headers, raw)] = receiver.requests
    payload = {
        "id": message["id"],
        "correlation_id": message["correlation_id"],
        "subject": "Your export",
        "body": "It is ready.",
        "metadata": {"order": 42, "note": "café"},
        "timestamp": message["timestamp"],
    }
    assert raw == json.dumps(payload, separators=(",", ":")).encode()
    assert headers["Content-Type"] == "application/json"
    assert headers["Content-Length"] == str(len(raw))
    expected = hmac.new(b"shared-with-the-receiver", raw, hashlib.sha256).hexdigest()
    assert headers["X-Wipsie-Signature"] == f"sha256={expected}"
    assert headers["X-Wipsie-Delivery"] == message["id"]


def test_a_webhook_signature_does_not_verify_with_another_secret(receiver, settings):
    settings.WEBHOOK_SIGNING_SECRET = "the-real-secret"

    send(notification_type="webhook", recipient=receiver.url())

    [(headers, raw)] = receiver.requests
    forged = hmac.new(b"a-guessed-secret", raw, hashlib.sha256).hexdigest()
    assert not hmac.compare_digest(headers["X-Wipsie-Signature"], f"sha256={forged}")


@pytest.mark.parametrize(
    "status, expected", [(500, TemporaryTaskError), (429, TemporaryTaskError), (404, PermanentTaskError)]
)
def test_a_webhook_answer_is_classified_by_its_status(receiver, status, expected):
    receiver.status = status

    with pytest.raises(expected, match=f"HTTP {status}"):
        send(notification_type="webhook", recipient=receiver.url())

    assert len(receiver.requests) == 1


def test_a_webhook_to_loopback_is_refused_unless_private_networks_are_allowed(receiver, settings):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = False

    with pytest.raises(PermanentTaskError, match="loopback"):
        send(notification_type="webhook", recipient=receiver.url())

    assert receiver.requests == []


def test_a_webhook_to_the_cloud_metadata_address_is_refused_even_when_private_networks_are_allowed(settings):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = True

    with pytest.raises(PermanentTaskError, match="169.254.169.254 is link-local"):
        send(notification_type="webhook", recipient="http://169.254.169.254/latest/meta-data/")


# --- SMS and push through SNS ----------------------------------------------------------------------


def test_an_sms_is_published_to_the_phone_number(sns, sqs):
    _, result = send(notification_type="sms", recipient="+14155550100", body="Your code is 1234")

    assert result["notification_type"] == "sms"
    assert result["recipient"] == "+14155550100"
    assert moto_sns_state(sqs)["SMS"] == [
        {
            "message_id": result["sns_message_id"],
            "phone_number": "+14155550100",
            "message": "Your code is 1234",
        }
    ]


def test_a_push_is_published_to_the_platform_endpoint(sns, sqs, platform_endpoint):
    _, result = send(notification_type="push", recipient=platform_endpoint, body="You have mail")

    assert result["recipient"] == platform_endpoint
    [endpoint] = moto_sns_state(sqs)["PlatformEndpoint"]
    assert endpoint["arn"] == platform_endpoint
    assert endpoint["messages"] == {result["sns_message_id"]: "You have mail"}


def test_a_push_to_an_endpoint_that_does_not_exist_is_a_permanent_failure(sns, platform_endpoint):
    missing = platform_endpoint.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"

    with pytest.raises(PermanentTaskError, match="SNS refused"):
        send(notification_type="push", recipient=missing)


def test_an_unreachable_sns_is_a_temporary_failure(settings):
    settings.AWS_ENDPOINT_URL_SNS = closed_endpoint()
    settings.SQS_CONNECT_TIMEOUT_SECONDS = 0.5
    sqs_client.reset()
    try:
        with pytest.raises(TemporaryTaskError, match="SNS unavailable"):
            send(notification_type="sms", recipient="+14155550100")
    finally:
        sqs_client.reset()
