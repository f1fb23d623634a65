"""Poll results: what each poll fetched, kept as a record (no add, edit or delete)."""

import json

from django.contrib import admin
from django.db.models import Q
from django.utils.html import format_html
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import RangeDateTimeFilter, RelatedDropdownFilter
from unfold.decorators import display

from sqs_app.admin import guards
from sqs_app.admin.links import change_link
from sqs_app.admin.trace import exact
from sqs_app.permissions import Action
from tasks_app.models import PollResult


@admin.register(PollResult)
class PollResultAdmin(guards.RefuseUnpermittedActions, ModelAdmin):
    list_display = [
        "polled",
        "source",
        "status_code",
        "item_count",
        "duration",
        "truncated",
        "poll",
        "message",
    ]
    list_display_links = ["polled"]
    # "schedule" is what the recurring polls page links with (?schedule__id__exact=N).
    list_filter = [("schedule", RelatedDropdownFilter), ("polled_at", RangeDateTimeFilter), "truncated"]
    list_filter_submit = True
    search_fields = ["source_url"]
    list_select_related = ["schedule", "message"]
    list_per_page = 50
    show_full_result_count = False
    fields = readonly_fields = [
        "polled_at",
        "source_url",
        "status_code",
        "item_count",
        "duration_ms",
        "poll",
        "message",
        "truncated",
        "payload_pretty",
        "excerpt",
    ]

    def has_add_permission(self, request):
        return False  # a worker writes these when it polls

    def has_change_permission(self, request, obj=None):
        return False  # a record of what a poll fetched

    def has_delete_permission(self, request, obj=None):
        return False  # history_prune removes old ones

    def get_queryset(self, request):
        results = super().get_queryset(request)
        if guards.can(request, Action.VIEW_ALL) or guards.can(request, Action.MANAGE_POLLS):
            return results
        # As for messages and polls: the results of what the user sent.
        return results.filter(Q(message__sent_by=request.user) | Q(schedule__origin__sent_by=request.user))

    @display(description="polled", ordering="polled_at")
    def polled(self, obj):
        return exact(obj.polled_at)

    @display(description="source")
    def source(self, obj):
        return format_html('<span class="wipsie-cell" title="{}">{}</span>', obj.source_url, obj.source_url)

    @display(description="ms", ordering="duration_ms")
    def duration(self, obj):
        return f"{obj.duration_ms:.0f}"

    @display(description="recurring poll")
    def poll(self, obj):
        return change_link("admin:tasks_app_pollschedule_change", obj.schedule_id, f"#{obj.schedule_id}")

    @display(description="message")
    def message(self, obj):
        return change_link("admin:sqs_app_message_change", obj.message_id, obj.message)

    @display(description="payload")
    def payload_pretty(self, obj):
        if obj.payload is None:
            return "-"
        return format_html(
            '<pre class="wipsie-pre">{}</pre>', json.dumps(obj.payload, indent=2, ensure_ascii=False)
        )
