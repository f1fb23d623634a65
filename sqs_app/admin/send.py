"""Send: a form per task type, or raw JSON, validated by the API's own serializer.

The fields come from sqs_app.schemas (see schema_forms); the message they
make is checked by SendRequestSerializer, the API's, and sent by
services.message_send. Every error is shown at once, beside its field.
"""

import json

from django import forms
from django.contrib import messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from .. import services
from ..api.serializers import SendRequestSerializer
from ..errors import WipsieError, validation_details
from ..models import AuditVia
from ..permissions import Action
from ..queues import LOGICAL_QUEUES
from ..schemas import TASK_DATA_SCHEMAS, StandardMessageSerializer
from . import guards, schema_forms

# The form's tabs: the three task families, a message with no task type, raw JSON.
KINDS = {
    "notification": "Notification",
    "processing": "Processing",
    "data_polling": "Data polling",
    "plain": "Plain message",
    "raw": "Raw JSON",
}
# Where each kind goes unless the operator picks another queue.
DEFAULT_QUEUES = {
    "notification": "notifications",
    "processing": "task_processing",
    "data_polling": "data_polling",
}
DATA_PREFIX = "data__"
ENVELOPE_EXCLUDE = ("task_type", "data", "retry_count")
MAX_DELAY_SECONDS = 900  # SQS's limit
# What the envelope's fields mean to someone at the form (the schema says what is allowed).
ENVELOPE_HELP = {
    "id": "Optional. Empty: a new id. An id already sent is recognised as a duplicate and not sent again.",
    "message": "A human-readable description of the message.",
    "correlation_id": "Optional. Ties related messages together; generated when empty.",
}


class SendForm(forms.Form):
    queue_name = forms.ChoiceField(choices=[(q, q) for q in LOGICAL_QUEUES], label="queue")
    attributes = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text='Optional SQS message attributes as JSON, e.g. {"tenant": "acme"}',
    )
    delay_seconds = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_DELAY_SECONDS,
        initial=0,
        help_text="Keep the message invisible this long (0 to 900 seconds).",
    )

    def __init__(self, *args, kind: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind
        if kind == "raw":
            self.fields["message"] = forms.CharField(
                widget=forms.Textarea(attrs={"rows": 14}),
                help_text='A whole StandardMessage as JSON: {"task_type": "notification", "data": {...}}',
            )
        else:
            self.fields.update(
                schema_forms.form_fields(
                    StandardMessageSerializer, exclude=ENVELOPE_EXCLUDE, help_texts=ENVELOPE_HELP
                )
            )
            if kind in TASK_DATA_SCHEMAS:
                self.fields.update(schema_forms.form_fields(TASK_DATA_SCHEMAS[kind], prefix=DATA_PREFIX))
            self.initial.setdefault("queue_name", DEFAULT_QUEUES.get(kind, "default"))
        # What every send needs (queue, message) first; the optional attributes and delay after.
        self.order_fields([n for n in self.fields if n not in ("attributes", "delay_seconds")])

    def clean(self):
        cleaned = super().clean()
        message, problems = self._message(cleaned)
        try:
            attributes = json.loads(cleaned.get("attributes") or "{}")
        except ValueError as exc:
            problems["attributes"] = f"Not valid JSON: {exc}"
            attributes = None
        for name, problem in problems.items():
            self.add_error(name, problem)
        if self.kind == "raw" and "message" in problems:
            return cleaned
        # The API's own validation: one schema for every door. What did not
        # parse is left out, so that the other fields' errors still show.
        payload = {
            "queue_name": cleaned.get("queue_name"),
            "message": message,
            "attributes": attributes or {},
        }
        serializer = SendRequestSerializer(data=payload)
        if serializer.is_valid():
            if not problems:
                cleaned["validated"] = serializer.validated_data
            return cleaned
        for path, errors in self._all_errors(serializer, message).items():
            field, text = self._field_for(path)
            if field in problems:
                continue
            for error in errors:
                self.add_error(field, f"{text}: {error}" if text else error)
        return cleaned

    def _all_errors(self, serializer, message) -> dict[str, list[str]]:
        """The serializer's errors, and the task data's too when the envelope's stopped it early.

        StandardMessageSerializer checks its own fields before the task data,
        so an envelope error would hide the data's: check the data on its own
        (the same schema) to show every error at once.
        """
        errors = validation_details(serializer.errors)["fields"]
        if self.kind in TASK_DATA_SCHEMAS and not any(p.startswith("message.data") for p in errors):
            data = TASK_DATA_SCHEMAS[self.kind](data=message.get("data", {}))
            if not data.is_valid():
                errors.update(validation_details({"message": {"data": data.errors}})["fields"])
        return errors

    def _message(self, cleaned) -> tuple[object, dict[str, str]]:
        if self.kind == "raw":
            try:
                return json.loads(cleaned.get("message") or "null"), {}
            except ValueError as exc:
                return None, {"message": f"Not valid JSON: {exc}"}
        message, problems = schema_forms.values(StandardMessageSerializer, cleaned)
        for name in ENVELOPE_EXCLUDE:
            message.pop(name, None)
        if self.kind in TASK_DATA_SCHEMAS:
            data, data_problems = schema_forms.values(
                TASK_DATA_SCHEMAS[self.kind], cleaned, prefix=DATA_PREFIX
            )
            message = {"task_type": self.kind, **message, "data": data}
            problems.update(data_problems)
        return message, problems

    def _field_for(self, path: str) -> tuple[str | None, str]:
        """The form field an API error path belongs to, and what to prefix its message with."""
        head, _, rest = path.partition(".")
        if head == "message" and self.kind != "raw":
            if rest.startswith("data."):
                name = DATA_PREFIX + rest.removeprefix("data.").split(".")[0].split("[")[0]
                if name in self.fields:
                    return name, ""
            if rest in self.fields:
                return rest, ""
            return None, path
        if head in self.fields:
            return head, path if head == "message" else ""
        return None, path


def send_view(model_admin, request):
    guards.require(request, Action.SEND)
    kind = request.GET.get("type", "notification")
    kind = kind if kind in KINDS else "notification"
    form = SendForm(request.POST or None, kind=kind)
    if request.method == "POST" and form.is_valid() and "validated" in form.cleaned_data:
        data = form.cleaned_data["validated"]
        guards.require(request, Action.SEND, queue=data["queue_name"])
        try:
            sent = services.message_send(
                queue=data["queue_name"],
                message=data["message"],
                attributes=data["attributes"],
                sent_by=request.user,
                source="manual",
                delay_seconds=form.cleaned_data.get("delay_seconds") or 0,
                via=AuditVia.ADMIN,
            )
        except WipsieError as exc:
            form.add_error(None, f"{exc.error_code}: {exc.message}")
        else:
            url = reverse("admin:sqs_app_message_change", args=[sent.record.pk])
            if sent.duplicate:
                # The duplicate-id rule: SQS already has this message; nothing was sent.
                # Keep the form (and any edit) and say so where the id was typed.
                form.add_error(
                    "id" if "id" in form.fields else None,
                    format_html(
                        'A message with this id was already sent (<a href="{}">{}</a>); nothing was sent. '
                        "Clear the id to send this as a new message.",
                        url,
                        sent.message_id or sent.record.standard_id,
                    ),
                )
            else:
                model_admin.message_user(
                    request,
                    format_html(
                        'Sent message <a href="{}">{}</a> to {}.', url, sent.message_id, data["queue_name"]
                    ),
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(url)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Send a message",
        "form": form,
        "kind": kind,
        "kinds": KINDS,
    }
    return TemplateResponse(request, "admin/sqs_app/send_message.html", context)
