"""The message schemas, defined once (spec: "Message Schemas").

The API, the admin forms, the management commands and the workers all
validate through these serializers; nothing else restates a field.

- `StandardMessageSerializer`: the envelope every Wipsie message carries.
- `TASK_DATA_SCHEMAS`: the `data` of the three task families, by `task_type`.
- `AttributesField`: caller attributes, turned into SQS message attributes.
- `json_problems`, `json_text_depth_exceeds`: what no message may carry
  (characters SQS refuses, non-finite numbers, nesting past `MAX_DEPTH`), for
  every door: the workers can name the reason a foreign message is poison.
"""

import math
import re
import threading
import uuid
from datetime import UTC, datetime

from rest_framework import serializers

PRIORITIES = ("low", "medium", "high")
SOURCES = ("api", "lambda", "manual", "scheduler")


# --- What no message may carry ------------------------------------------------------

# Levels of objects and arrays a message may nest (the message itself is level 1).
MAX_DEPTH = 64
# A request body may nest this much deeper than its messages (a batch wraps each
# message in three levels). Anything deeper is refused before it is parsed.
MAX_REQUEST_DEPTH = MAX_DEPTH + 8
# The characters SQS accepts in a message (#x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD
# #x10000-#x10FFFF). NUL is not among them, and PostgreSQL refuses it too.
_NOT_SQS_CHARACTER = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_MAX_PROBLEMS = 20  # enough to fix a message; a hostile one cannot make the answer huge


def text_problem(text: str) -> str | None:
    """Why SQS would refuse this text, or None."""
    bad = _NOT_SQS_CHARACTER.search(text)
    if bad is None:
        return None
    return f"Contains a character SQS does not accept (U+{ord(bad.group()):04X})."


def json_problems(value, *, max_depth: int = MAX_DEPTH) -> list[tuple[tuple, str]]:
    """Everything in a parsed JSON value that no message may carry, as (path, reason).

    Walks with an explicit stack, never recursion, so any depth is safe to
    look at; a value nested past `max_depth` is reported and not entered.
    """
    problems: list[tuple[tuple, str]] = []
    stack = [((), value, 1)]
    while stack and len(problems) < _MAX_PROBLEMS:
        path, node, depth = stack.pop()
        if isinstance(node, dict | list) and depth > max_depth:
            problems.append((path, f"Nested deeper than {max_depth} levels."))
        elif isinstance(node, dict):
            for key, child in reversed(node.items()):
                reason = text_problem(key) if isinstance(key, str) else None
                if reason:
                    problems.append((path + (key,), f"This key: {reason}"))
                else:
                    stack.append((path + (key,), child, depth + 1))
        elif isinstance(node, list):
            stack.extend(
                (path + (index,), child, depth + 1) for index, child in reversed(list(enumerate(node)))
            )
        elif isinstance(node, str):
            if reason := text_problem(node):
                problems.append((path, reason))
        elif isinstance(node, float) and not math.isfinite(node):
            problems.append((path, "Numbers must be finite (this one is too large, or not a number)."))
    return problems


def problems_as_errors(problems: list[tuple[tuple, str]]) -> dict:
    """(path, reason) pairs as DRF's nested error detail, which names each path."""
    errors: dict = {}
    for path, reason in problems:
        node = errors
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node.setdefault(path[-1] if path else "non_field_errors", []).append(reason)
    return errors


_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def json_text_depth_exceeds(text: str, limit: int = MAX_REQUEST_DEPTH) -> bool:
    """True when raw JSON nests deeper than `limit`, found without parsing (or recursing).

    Strings are dropped first (their brackets do not count), then the
    brackets are counted, stopping as soon as the limit is passed.
    """
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    if len(brackets) <= limit:
        return False
    depth = 0
    for bracket in brackets:
        depth += 1 if bracket in "[{" else -1
        if depth > limit:
            return True
    return False


# --- Validating without a serializer per call ------------------------------------------

_validators = threading.local()  # serializer class -> this thread's instance


def validated(serializer_class: type[serializers.Serializer], data) -> dict:
    """`data` validated by `serializer_class`; raises ValidationError with DRF's usual detail.

    The same result as `serializer_class(data=data).is_valid(raise_exception=True)`,
    without building a serializer per call: a new instance deep-copies all of
    its declared fields (nested serializers included), which on the send path
    cost a fifth of a request's CPU outside boto3. `run_validation` keeps no
    state on the instance, so each thread keeps one instance per class and
    reuses it; per thread, because the instance binds its fields lazily on
    first use.
    """
    instances = getattr(_validators, "instances", None)
    if instances is None:
        instances = _validators.instances = {}
    validator = instances.get(serializer_class)
    if validator is None:
        validator = instances[serializer_class] = serializer_class()
    return validator.run_validation(data)


# --- Task-specific data --------------------------------------------------------


class DataPollingDataSerializer(serializers.Serializer):
    source_url = serializers.URLField(max_length=2048)
    # Optional: without it the poll runs once; with it, it recurs every N seconds.
    poll_interval = serializers.IntegerField(min_value=1, max_value=7 * 24 * 3600, required=False)
    last_poll_time = serializers.DateTimeField(required=False, allow_null=True)
    filters = serializers.DictField(required=False)

    def validate_source_url(self, value: str) -> str:
        if not value.lower().startswith(("http://", "https://")):
            raise serializers.ValidationError("Only http and https URLs can be polled.")
        return value


class ProcessingDataSerializer(serializers.Serializer):
    operation = serializers.ChoiceField(choices=["analysis", "transformation", "aggregation"])
    input_data = serializers.JSONField()
    output_format = serializers.ChoiceField(choices=["json", "csv"], default="json")
    processing_options = serializers.DictField(required=False, default=dict)


class NotificationDataSerializer(serializers.Serializer):
    recipient = serializers.CharField(max_length=2048)
    notification_type = serializers.ChoiceField(choices=["email", "sms", "push", "webhook"])
    subject = serializers.CharField(required=False, allow_blank=True, max_length=998)
    body = serializers.CharField(allow_blank=True)
    template_id = serializers.RegexField(
        r"^[A-Za-z0-9_-]{1,100}$",
        required=False,
        error_messages={"invalid": "Use letters, digits, '_' and '-' only."},
    )
    metadata = serializers.DictField(required=False, default=dict)

    def validate(self, attrs):
        recipient, kind = attrs["recipient"], attrs["notification_type"]
        if kind == "email":
            _recipient_check(serializers.EmailField(), recipient)
        elif kind == "webhook":
            url = _recipient_check(serializers.URLField(), recipient)
            if not url.lower().startswith(("http://", "https://")):
                raise serializers.ValidationError({"recipient": "A webhook must be http(s)."})
        elif kind == "sms" and not re.fullmatch(r"\+[1-9]\d{6,14}", recipient):
            raise serializers.ValidationError(
                {"recipient": "An SMS recipient is a phone number in E.164 form, like +14155550100."}
            )
        elif kind == "push" and not recipient.startswith("arn:"):
            raise serializers.ValidationError(
                {"recipient": "A push recipient is an SNS platform endpoint ARN."}
            )
        return attrs


def _recipient_check(field: serializers.Field, recipient: str) -> str:
    """Validate the recipient with `field`, its errors named after `recipient`.

    A field run on its own reports a bare list, which would surface as
    `data.non_field_errors` and not tell the caller which field is wrong.
    """
    try:
        return field.run_validation(recipient)
    except serializers.ValidationError as exc:
        raise serializers.ValidationError({"recipient": exc.detail}) from exc


TASK_DATA_SCHEMAS: dict[str, type[serializers.Serializer]] = {
    "data_polling": DataPollingDataSerializer,
    "processing": ProcessingDataSerializer,
    "notification": NotificationDataSerializer,
}


# --- The StandardMessage ----------------------------------------------------------


class StandardMessageSerializer(serializers.Serializer):
    """What a caller may put in a message. Unknown keys are kept as they are.

    `id` may be given, so that a client retrying a send is recognised as the
    same message; otherwise one is generated. `source`, `queue` and
    `timestamp` are always set by Wipsie.
    """

    id = serializers.UUIDField(required=False)
    task_type = serializers.CharField(required=False, max_length=100)
    message = serializers.CharField(required=False, allow_blank=True)
    data = serializers.DictField(required=False)
    priority = serializers.ChoiceField(choices=PRIORITIES, required=False)
    retry_count = serializers.IntegerField(required=False, min_value=0)
    correlation_id = serializers.CharField(required=False, max_length=128)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["A message must be a JSON object."]})
        if problems := json_problems(data):
            raise serializers.ValidationError(problems_as_errors(problems))
        known = super().to_internal_value(data)
        schema = TASK_DATA_SCHEMAS.get(known.get("task_type", ""))
        if schema is not None:
            if "data" not in data:
                raise serializers.ValidationError(
                    {"data": [f"Required for task_type '{known['task_type']}'."]}
                )
            try:
                task_data = validated(schema, data["data"])
            except serializers.ValidationError as exc:
                raise serializers.ValidationError({"data": exc.detail}) from exc
            known["data"] = {**data["data"], **_jsonable(task_data)}
        # Keep the caller's other keys: the body is theirs, we only add to it.
        return {**data, **known}


def _jsonable(values: dict) -> dict:
    """Validated data back to JSON-friendly values (datetimes to ISO strings)."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}


def build_standard_message(*, message: dict, queue: str, source: str) -> dict:
    """A validated message (from StandardMessageSerializer) as the body stored in SQS."""
    body = dict(message)
    body["id"] = str(body.get("id") or uuid.uuid4())
    body["timestamp"] = datetime.now(UTC).isoformat()
    body["source"] = source
    body["queue"] = queue
    body["correlation_id"] = body.get("correlation_id") or str(uuid.uuid4())
    return body


# --- Message attributes ----------------------------------------------------------

MAX_ATTRIBUTES = 10  # SQS's own limit per message
_ATTRIBUTE_NAME = re.compile(r"^(?!\.)(?!.*\.\.)(?!.*\.$)[A-Za-z0-9_.-]{1,256}$")


class AttributesField(serializers.DictField):
    """Caller attributes `{"priority": "high", "retries": 3}` as SQS message attributes.

    Strings and booleans become `String`, numbers become `Number`. SQS reserves
    names starting with "AWS." or "Amazon." and allows at most 10 per message.
    """

    default_error_messages = {
        "too_many": f"At most {MAX_ATTRIBUTES} attributes are allowed (SQS's limit).",
        "bad_name": (
            "Attribute names use letters, digits, '_', '-' and '.', up to 256 "
            "characters, and may not start with 'AWS.' or 'Amazon.'."
        ),
        "bad_value": "Attribute values must be strings, numbers or booleans.",
    }

    def to_internal_value(self, data):
        attributes = super().to_internal_value(data)
        if len(attributes) > MAX_ATTRIBUTES:
            self.fail("too_many")
        sqs_attributes = {}
        for name, value in attributes.items():
            if (
                not isinstance(name, str)
                or not _ATTRIBUTE_NAME.match(name)
                or name.lower().startswith(("aws.", "amazon."))
            ):
                raise serializers.ValidationError({name: [self.error_messages["bad_name"]]})
            sqs_attributes[name] = _sqs_attribute(value, self.error_messages["bad_value"], name)
        return sqs_attributes


def _sqs_attribute(value, error: str, name: str) -> dict:
    if isinstance(value, bool):
        return {"DataType": "String", "StringValue": "true" if value else "false"}
    if isinstance(value, float) and not math.isfinite(value):
        raise serializers.ValidationError({name: ["Numbers must be finite."]})
    if isinstance(value, int | float):
        return {"DataType": "Number", "StringValue": repr(value)}
    if isinstance(value, str) and (reason := text_problem(value)):
        raise serializers.ValidationError({name: [reason]})
    if isinstance(value, str) and value:
        return {"DataType": "String", "StringValue": value}
    if isinstance(value, str):
        raise serializers.ValidationError({name: ["Attribute values may not be empty (SQS)."]})
    raise serializers.ValidationError({name: [error]})


def attributes_size(attributes: dict) -> int:
    """Bytes SQS counts toward the message size limit for these attributes."""
    return sum(
        len(name.encode()) + len(a["DataType"].encode()) + len(a.get("StringValue", "").encode())
        for name, a in attributes.items()
    )
