"""Replay one message from its trace page, optionally after editing it, as a new message.

The page is the send form (sqs_app/admin/send.py), filled in from the
original: the same fields, made from the same schemas, validated by the API's
own serializer, every error beside its field and the edit kept on the page.
The replay itself is operations.message_replay: a new message with a new id,
linked to its original, which keeps its ids and history.

The form carries the new message's id (made when the page is drawn), so a
second press of the button, or the browser sending the form again, is
recognised by message_send's duplicate-id rule: nothing is sent twice.
"""

import contextlib
import json
import uuid

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from .. import operations
from ..errors import WipsieError
from ..models import AuditVia, Message
from ..operations.replay import NOT_REPLAYED_KEYS
from ..permissions import Action
from ..schemas import TASK_DATA_SCHEMAS, StandardMessageSerializer
from . import guards
from .send import DATA_PREFIX, ENVELOPE_EXCLUDE, KINDS, SendForm


class ReplayForm(SendForm):
    """The send form for a replay: no id of its own to type (a replay gets a new one), no delay."""

    replay_id = forms.UUIDField(widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("id", "delay_seconds"):
            self.fields.pop(name, None)
        self.fields["queue_name"].label = "replay to queue"
        if self.kind == "raw":
            self.fields["message"].help_text = (
                "The message as JSON. Its id, timestamp, source, queue, retry_count and last_error are "
                "set anew for the replay."
            )


def natural_kind(body: object) -> str:
    """The form that carries this body whole: its task type's, a plain message's, or raw JSON."""
    if not isinstance(body, dict):
        return "raw"
    if body.get("task_type") in TASK_DATA_SCHEMAS:
        return body["task_type"]
    return "raw" if left_out(body, "plain") else "plain"


def left_out(body: dict, kind: str) -> list[str]:
    """The body's keys that the form of `kind` has no field for (raw JSON keeps everything)."""
    if kind == "raw":
        return []
    envelope = set(StandardMessageSerializer().fields) - set(ENVELOPE_EXCLUDE) - {"id"}
    allowed = envelope | ({"task_type", "data"} if kind in TASK_DATA_SCHEMAS else set())
    missing = [key for key in body if key not in allowed and key not in NOT_REPLAYED_KEYS]
    if kind in TASK_DATA_SCHEMAS and isinstance(body.get("data"), dict):
        known = set(TASK_DATA_SCHEMAS[kind]().fields)
        missing += [f"data.{key}" for key in body["data"] if key not in known]
    return missing


def initial_for(record: Message, kind: str) -> dict:
    """The form's fields filled in from the recorded message."""
    body = (
        {k: v for k, v in record.body.items() if k not in NOT_REPLAYED_KEYS}
        if isinstance(record.body, dict)
        else {}
    )
    initial = {
        "queue_name": record.queue,
        "replay_id": uuid.uuid4(),
        "attributes": json.dumps(_plain_attributes(record.attributes)) if record.attributes else "",
    }
    if kind == "raw":
        initial["message"] = json.dumps(body if body else record.body, indent=2, ensure_ascii=False)
        return initial
    for name in StandardMessageSerializer().fields:
        if name in body and name not in ENVELOPE_EXCLUDE:
            initial[name] = _as_text(body[name])
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    for name in TASK_DATA_SCHEMAS[kind]().fields if kind in TASK_DATA_SCHEMAS else ():
        if name in data:
            initial[DATA_PREFIX + name] = _as_text(data[name])
    return initial


def _as_text(value) -> object:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value


def _plain_attributes(attributes: dict) -> dict:
    """SQS's {"DataType", "StringValue"} back to the plain values the form takes (numbers as numbers)."""
    plain = {}
    for name, attribute in attributes.items():
        value = attribute.get("StringValue") if isinstance(attribute, dict) else None
        if value is None:
            continue  # binary attributes cannot be typed into a form
        if str(attribute.get("DataType", "")).startswith("Number"):
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        plain[name] = value
    return plain


def replay_view(model_admin, request, object_id: str):
    guards.require(request, Action.REPLAY)
    record = (
        model_admin.get_queryset(request).filter(pk=object_id).first() if str(object_id).isdigit() else None
    )
    if record is None:
        raise Http404("No such message.")
    guards.require(request, Action.REPLAY, queue=record.queue)
    natural = natural_kind(record.body)
    kind = request.GET.get("type", natural)
    kind = kind if kind in (natural, "raw") else natural
    form = ReplayForm(request.POST or None, kind=kind, initial=initial_for(record, kind))
    if request.method == "POST" and form.is_valid() and "validated" in form.cleaned_data:
        response = _replay(model_admin, request, record, form)
        if response is not None:
            return response
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Replay message {record.sqs_message_id or record.standard_id or record.pk}",
        "opts": Message._meta,
        "original": record,
        "record": record,
        "form": form,
        "kind": kind,
        "kinds": {value: KINDS[value] for value in dict.fromkeys([natural, "raw"])},
        "left_out": left_out(record.body, kind) if isinstance(record.body, dict) else [],
        "trace_url": reverse("admin:sqs_app_message_change", args=[record.pk]),
    }
    return TemplateResponse(request, "admin/sqs_app/replay_message.html", context)


def _replay(model_admin, request, record: Message, form: ReplayForm):
    """Send the replay; the redirect to its trace page, or None (the error is on the form, the edit kept)."""
    data = form.cleaned_data["validated"]
    guards.require(request, Action.REPLAY, queue=data["queue_name"])
    try:
        replay = operations.message_replay(
            record=record,
            to_queue=data["queue_name"],
            message=data["message"],
            attributes=data["attributes"],
            replay_id=str(form.cleaned_data["replay_id"]),
            replayed_by=request.user,
            via=AuditVia.ADMIN,
        )
    except WipsieError as exc:
        form.add_error(None, f"{exc.error_code}: {exc.message}")
        return None
    url = reverse("admin:sqs_app_message_change", args=[replay.record.pk]) if replay.record else ""
    if replay.duplicate:
        text = 'This replay was sent already (<a href="{}">{}</a>); nothing was sent again.'
        model_admin.message_user(request, format_html(text, url, replay.message_id), messages.WARNING)
    else:
        text = 'Replayed as new message <a href="{}">{}</a> on {}.'
        model_admin.message_user(
            request, format_html(text, url, replay.message_id, replay.queue), messages.SUCCESS
        )
    return HttpResponseRedirect(url or reverse("admin:sqs_app_message_change", args=[record.pk]))
