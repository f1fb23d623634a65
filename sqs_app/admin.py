"""The admin: staff browse queues and the message history, send, replay and redrive.

Every action goes through sqs_app.services, exactly as the API does; the
forms validate with the same schemas (sqs_app.schemas).
"""

import json

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from . import selectors, services
from .api.serializers import SendRequestSerializer
from .errors import WipsieError, validation_details
from .models import EventKind, Message, MessageEvent, MessageStatus
from .queues import LOGICAL_QUEUES


def _dlq_key(message: Message) -> str:
    """What the message's DLQ copy is known by: its StandardMessage id, or else the
    DLQ's own SQS id recorded with the outcome. The copy is a new SQS message, so
    the original SQS id of a body from another producer never matches it.
    """
    if message.standard_id:
        return str(message.standard_id)
    outcome = message.events.filter(kind__in=[EventKind.FAILED, EventKind.DEAD_LETTERED]).last()
    return (outcome.detail.get("dlq_message_id") if outcome else None) or message.sqs_message_id


class MessageEventInline(admin.TabularInline):
    model = MessageEvent
    extra = 0
    can_delete = False
    readonly_fields = ["kind", "at", "actor", "detail"]

    def has_add_permission(self, request, obj=None):
        return False  # the timeline is append-only, and only Wipsie appends


class SendMessageForm(forms.Form):
    queue_name = forms.ChoiceField(choices=[(q, q) for q in LOGICAL_QUEUES])
    message = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12, "cols": 80, "class": "vLargeTextField"}),
        help_text='A StandardMessage as JSON, e.g. {"task_type": "notification", "data": {...}}',
    )
    attributes = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text='Optional SQS message attributes as JSON, e.g. {"priority": "high"}',
    )

    def clean(self):
        cleaned = super().clean()
        try:
            payload = {
                "queue_name": cleaned.get("queue_name"),
                "message": json.loads(cleaned.get("message") or "null"),
                "attributes": json.loads(cleaned.get("attributes") or "{}"),
            }
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from exc
        # The API's own validation: one schema for every door.
        serializer = SendRequestSerializer(data=payload)
        if not serializer.is_valid():
            for field, problems in validation_details(serializer.errors)["fields"].items():
                self.add_error(None, f"{field}: {' '.join(problems)}")
            return cleaned
        cleaned["validated"] = serializer.validated_data
        return cleaned


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = [
        "sqs_message_id",
        "queue",
        "task_type",
        "status_badge",
        "priority",
        "attempts",
        "sent_by",
        "created_at",
    ]
    list_filter = ["queue", "status", "task_type", "priority", "source"]
    search_fields = ["sqs_message_id", "standard_id", "correlation_id"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Message._meta.fields] + ["task_result"]
    inlines = [MessageEventInline]
    list_select_related = ["sent_by"]
    actions = ["replay_from_dlq"]
    change_list_template = "admin/sqs_app/message/change_list.html"

    def has_add_permission(self, request):
        return False  # messages are sent (see "Send a message"), not typed into a table

    def has_change_permission(self, request, obj=None):
        return False  # history is a record of what happened

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        colours = {
            MessageStatus.SUCCEEDED: "#2e7d32",
            MessageStatus.FAILED: "#c62828",
            MessageStatus.DEAD_LETTERED: "#6a1b9a",
            MessageStatus.RETRYING: "#ef6c00",
        }
        return format_html(
            '<strong style="color: {}">{}</strong>', colours.get(obj.status, "inherit"), obj.status
        )

    @admin.display(description="task result")
    def task_result(self, obj):
        result = selectors.message_task_result(message=obj)
        if result is None:
            return "-"
        return format_html(
            "<code>{}</code>: <pre>{}</pre>", result.status, json.dumps(result.result, indent=2)
        )

    @admin.action(description="Replay the selected messages from their dead-letter queue")
    def replay_from_dlq(self, request, queryset):
        replayable = queryset.filter(status__in=[MessageStatus.FAILED, MessageStatus.DEAD_LETTERED])
        by_queue: dict[str, set[str]] = {}
        for message in replayable:
            by_queue.setdefault(message.queue, set()).add(_dlq_key(message))
        replayed = 0
        for queue, ids in by_queue.items():
            try:
                replayed += len(services.dlq_redrive(queue=queue, only_ids=ids, replayed_by=request.user))
            except WipsieError as exc:
                self.message_user(request, f"{queue}: {exc.message}", messages.ERROR)
        skipped = queryset.count() - replayable.count()
        self.message_user(
            request,
            f"Replayed {replayed} message(s)."
            + (f" {skipped} were not failed or dead-lettered and were left alone." if skipped else ""),
            messages.SUCCESS if replayed else messages.WARNING,
        )

    def get_urls(self):
        custom = [
            path("send/", self.admin_site.admin_view(self.send_view), name="sqs_app_message_send"),
            path("queues/", self.admin_site.admin_view(self.queues_view), name="sqs_app_message_queues"),
            path(
                "queues/<str:queue_name>/redrive/",
                self.admin_site.admin_view(self.redrive_view),
                name="sqs_app_message_redrive",
            ),
        ]
        return custom + super().get_urls()

    def send_view(self, request):
        form = SendMessageForm(request.POST or None)
        if request.method == "POST" and form.is_valid() and "validated" in form.cleaned_data:
            data = form.cleaned_data["validated"]
            try:
                sent = services.message_send(
                    queue=data["queue_name"],
                    message=data["message"],
                    attributes=data["attributes"],
                    sent_by=request.user,
                    source="manual",
                )
            except WipsieError as exc:
                form.add_error(None, f"{exc.error_code}: {exc.message}")
            else:
                self.message_user(request, f"Sent message {sent.message_id} to {data['queue_name']}.")
                return HttpResponseRedirect(reverse("admin:sqs_app_message_change", args=[sent.record.pk]))
        context = {**self.admin_site.each_context(request), "title": "Send a message", "form": form}
        return TemplateResponse(request, "admin/sqs_app/send_message.html", context)

    def queues_view(self, request):
        rows, error = [], None
        try:
            rows = selectors.queue_overview()
        except WipsieError as exc:
            error = f"{exc.error_code}: {exc.message}"
        context = {**self.admin_site.each_context(request), "title": "Queues", "rows": rows, "error": error}
        return TemplateResponse(request, "admin/sqs_app/queues.html", context)

    def redrive_view(self, request, queue_name: str):
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:sqs_app_message_queues"))
        try:
            replayed = services.dlq_redrive(queue=queue_name, replayed_by=request.user)
        except WipsieError as exc:
            self.message_user(request, f"{queue_name}: {exc.message}", messages.ERROR)
        else:
            self.message_user(request, f"Redrove {len(replayed)} message(s) from the {queue_name} DLQ.")
        return HttpResponseRedirect(reverse("admin:sqs_app_message_queues"))
