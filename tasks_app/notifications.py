"""The notification family: email, webhook, SMS and push.

- email: Django's email backend (EMAIL_URL), the body rendered from
  templates/notifications/<template_id>.txt (and .html when present) with
  `metadata`, or sent as it is without a template_id.
- webhook: an HTTP POST of JSON to `recipient`, signed with
  `X-Wipsie-Signature: sha256=<hex HMAC-SHA256 of the raw body>` keyed by
  WEBHOOK_SIGNING_SECRET. `X-Wipsie-Delivery` carries the message id, so a
  receiver can drop the rare duplicate (a worker killed after the POST and
  before recording it sends it again).
- sms / push: Amazon SNS Publish, to a phone number or a platform endpoint ARN.
"""

import contextlib
import hashlib
import hmac
import json
import smtplib

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template import Context, TemplateDoesNotExist
from django.template.loader import get_template

from sqs_app import sqs_client
from sqs_app.errors import SQSThrottled, SQSUnavailable, WipsieError

from . import outbound
from .errors import PermanentTaskError, TemporaryTaskError
from .policy import outbound_policy

SIGNATURE_HEADER = "X-Wipsie-Signature"
DEFAULT_SUBJECT = "Notification from Wipsie"


def notification_send(*, message: dict, data: dict) -> dict:
    """Deliver one validated notification; returns what was done, for the task result."""
    sender = {"email": _email, "webhook": _webhook, "sms": _sms, "push": _push}[data["notification_type"]]
    return {"notification_type": data["notification_type"], **sender(message, data)}


def webhook_signature(raw_body: bytes, secret: str | None = None) -> str:
    key = (secret or settings.WEBHOOK_SIGNING_SECRET).encode()
    return "sha256=" + hmac.new(key, raw_body, hashlib.sha256).hexdigest()


def _email(message: dict, data: dict) -> dict:
    context = {
        "subject": data.get("subject", ""),
        "body": data["body"],
        "recipient": data["recipient"],
        "metadata": data.get("metadata", {}),
    }
    text, html = _render(data.get("template_id"), context)
    email = EmailMultiAlternatives(
        subject=data.get("subject") or DEFAULT_SUBJECT,
        body=text,
        to=[data["recipient"]],
        headers={"X-Wipsie-Message-Id": str(message.get("id", ""))},
    )
    if html:
        email.attach_alternative(html, "text/html")
    try:
        email.send()
    except smtplib.SMTPRecipientsRefused as exc:
        raise PermanentTaskError(f"the mail server refused {data['recipient']}") from exc
    except (TimeoutError, smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError) as exc:
        raise TemporaryTaskError(f"mail server unavailable: {exc}") from exc
    except smtplib.SMTPResponseException as exc:
        error = PermanentTaskError if 500 <= exc.smtp_code < 600 else TemporaryTaskError
        raise error(f"mail server answered {exc.smtp_code}: {exc.smtp_error!r}") from exc
    except OSError as exc:
        # Last: every smtplib exception is an OSError, so caught any earlier this
        # would retry a 5xx rejection as if the server were only unreachable.
        raise TemporaryTaskError(f"mail server unavailable: {exc}") from exc
    return {"recipient": data["recipient"], "template_id": data.get("template_id")}


def _render(template_id: str | None, context: dict) -> tuple[str, str | None]:
    if not template_id:
        return context["body"], None
    try:
        # Plain text is not HTML: without autoescape off, "O'Brien" arrives as "O&#x27;Brien".
        text = get_template(f"notifications/{template_id}.txt").template.render(
            Context(context, autoescape=False)
        )
    except TemplateDoesNotExist as exc:
        raise PermanentTaskError(f"template_id '{template_id}': no such notification template") from exc
    try:
        html = get_template(f"notifications/{template_id}.html").render(context)
    except TemplateDoesNotExist:
        html = None
    return text, html


def _webhook(message: dict, data: dict) -> dict:
    payload = {
        "id": message.get("id"),
        "correlation_id": message.get("correlation_id"),
        "subject": data.get("subject"),
        "body": data["body"],
        "metadata": data.get("metadata", {}),
        "timestamp": message.get("timestamp"),
    }
    raw = json.dumps(payload, separators=(",", ":")).encode()
    response = outbound.fetch(
        "POST",
        data["recipient"],
        policy=outbound_policy(),
        content=raw,
        headers={
            "Content-Type": "application/json",
            SIGNATURE_HEADER: webhook_signature(raw),
            "X-Wipsie-Delivery": str(message.get("id", "")),
            "User-Agent": "Wipsie-Webhook/1.0",
        },
    )
    return {"recipient": data["recipient"], "status_code": response.status_code}


def _sms(message: dict, data: dict) -> dict:
    with _sns_errors():
        sns_id = sqs_client.sns_publish(message=data["body"], phone_number=data["recipient"])
    return {"recipient": data["recipient"], "sns_message_id": sns_id}


def _push(message: dict, data: dict) -> dict:
    with _sns_errors():
        sns_id = sqs_client.sns_publish(
            message=data["body"], target_arn=data["recipient"], subject=data.get("subject") or None
        )
    return {"recipient": data["recipient"], "sns_message_id": sns_id}


@contextlib.contextmanager
def _sns_errors():
    """SNS throttling or an unreachable endpoint is temporary; anything else is not."""
    try:
        yield
    except (SQSThrottled, SQSUnavailable) as exc:
        raise TemporaryTaskError(f"SNS unavailable: {exc.message}") from exc
    except WipsieError as exc:
        raise PermanentTaskError(f"SNS refused the notification: {exc.message}") from exc
