"""Send one message, validated like the API's, with source `manual`."""

import json
import sys
from pathlib import Path

from rest_framework import serializers

from sqs_app import errors, services
from sqs_app.management.base import OperatorCommand, UsageError, ranged_int
from sqs_app.models import AuditVia
from sqs_app.queues import LOGICAL_QUEUES
from sqs_app.schemas import AttributesField, StandardMessageSerializer


class SendInput(serializers.Serializer):
    message = StandardMessageSerializer()
    attributes = AttributesField(required=False, default=dict)


class Command(OperatorCommand):
    help = "Send a message. The body (JSON) comes from --body, --file, or standard input."
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("queue", help=f"The logical queue: {', '.join(LOGICAL_QUEUES)}.")
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--body", help="The message as JSON.")
        source.add_argument("--file", help="A file holding the message as JSON ('-' for standard input).")
        parser.add_argument(
            "--attr",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="A message attribute; repeatable. Numbers and true/false keep their type.",
        )
        parser.add_argument(
            "--delay", type=ranged_int(0, 900), default=0, help="Seconds before it is visible (0-900)."
        )

    def run(self, *, queue, body, file, attr, delay, **options):
        services.queue_require(queue)
        message = _parse_json(_read_body(body, file, options.get("stdin") or sys.stdin))
        data = SendInput(data={"message": message, "attributes": _parse_attributes(attr)})
        if not data.is_valid():
            raise errors.ValidationFailed(
                "The message is invalid.", details=errors.validation_details(data.errors)
            )
        sent = services.message_send(
            queue=queue,
            message=data.validated_data["message"],
            attributes=data.validated_data["attributes"],
            sent_by=self.operator_user(),
            source="manual",
            delay_seconds=delay,
            via=AuditVia.COMMAND,
            actor=self.operator,
        )
        return {
            "message_id": sent.message_id,
            "id": sent.body["id"],
            "queue": queue,
            "status": "duplicate" if sent.duplicate else "sent",
            "correlation_id": sent.body.get("correlation_id"),
        }


def _read_body(body: str | None, file: str | None, stdin) -> str:
    if body is not None:
        return body
    if file and file != "-":
        try:
            return Path(file).read_text()
        except OSError as exc:
            raise UsageError(f"Cannot read {file}: {exc.strerror}") from exc
    if file != "-" and stdin.isatty():
        raise UsageError("Give the message with --body, --file, or on standard input.")
    return stdin.read()


def _parse_json(text: str):
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"The message is not valid JSON: {exc}") from exc


def _parse_attributes(pairs: list[str]) -> dict:
    attributes = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--attr takes KEY=VALUE, not {pair!r}")
        attributes[key] = _typed(value)
    return attributes


def _typed(value: str):
    if value in ("true", "false"):
        return value == "true"
    try:
        number = json.loads(value)
    except ValueError:
        return value
    return number if isinstance(number, int | float) else value
