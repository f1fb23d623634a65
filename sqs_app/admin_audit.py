"""The audit log in the admin (the sidebar's "Audit log"): read only, filterable, searchable by message id.

Filters: action, door (via), user, queue, succeeded, and a date range. The
search box takes a message id (SQS's or the StandardMessage id, whole or its
start as the lists show it) or an actor's name. Entries are written by
sqs_app.audit.audit_record and never changed: no add, edit or delete here.

Kept out of sqs_app/admin (the console's package) and registered from
SqsAppConfig.ready().
"""

import json
from urllib.parse import urlencode

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import ChoicesDropdownFilter, RangeDateTimeFilter, RelatedDropdownFilter
from unfold.decorators import display

from .admin.guards import RefuseUnpermittedActions
from .admin.trace import exact
from .models import AuditEntry
from .queues import OPERATOR_QUEUES


class QueueFilter(admin.SimpleListFilter):
    """Wipsie's queues as fixed choices: no SELECT DISTINCT over the whole log to draw the filter."""

    title = "queue"
    parameter_name = "queue__exact"

    def lookups(self, request, model_admin):
        return [(name, name) for name in OPERATOR_QUEUES]

    def queryset(self, request, queryset):
        return queryset.filter(queue=self.value()) if self.value() else queryset


class AuditEntryAdmin(RefuseUnpermittedActions, ModelAdmin):
    list_display = ("when", "actor", "action", "via", "queue", "count", "messages", "succeeded")
    list_display_links = ("when",)
    list_filter = (
        ("action", ChoicesDropdownFilter),
        ("via", ChoicesDropdownFilter),
        ("user", RelatedDropdownFilter),
        QueueFilter,
        "succeeded",
        ("at", RangeDateTimeFilter),
    )
    list_filter_submit = True  # the date range needs an "apply" button
    # JSON as text, so a message id (or the start of one) is found in the list of ids.
    search_fields = ("message_ids", "=actor")
    search_help_text = "A message id (or its start), or who did it."
    ordering = ("-at", "-id")
    fields = readonly_fields = (
        "at",
        "actor",
        "user",
        "action",
        "via",
        "queue",
        "count",
        "succeeded",
        "message_links",
        "detail_pretty",
    )
    list_per_page = 100
    # The admin's COUNT(*) over a large log is not worth a slow page.
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @display(description="when", ordering="at")
    def when(self, obj):
        return exact(obj.at)

    @display(description="messages")
    def messages(self, obj):
        ids = obj.message_ids or []
        if not ids:
            return "-"
        more = f" +{len(ids) - 1}" if len(ids) > 1 else ""
        return format_html('<code title="{}">{}</code>{}', ", ".join(ids[:20]), str(ids[0])[:8] + "…", more)

    @display(description="messages acted on")
    def message_links(self, obj):
        """Each id as a search of the message list (it finds SQS ids and StandardMessage ids alike)."""
        changelist = reverse("admin:sqs_app_message_changelist")
        links = format_html_join(
            ", ",
            '<a href="{}?{}"><code>{}</code></a>',
            ((changelist, urlencode({"q": message_id}), message_id) for message_id in obj.message_ids or []),
        )
        truncated = (obj.detail or {}).get("message_ids_truncated")
        return format_html("{}{}", links or "-", f" (and {truncated} more)" if truncated else "")

    @display(description="detail")
    def detail_pretty(self, obj):
        if not obj.detail:
            return "-"
        return format_html(
            '<pre class="wipsie-pre">{}</pre>', json.dumps(obj.detail, indent=2, ensure_ascii=False)
        )


def register(site: admin.AdminSite | None = None) -> None:
    site = site or admin.site
    if not site.is_registered(AuditEntry):
        site.register(AuditEntry, AuditEntryAdmin)
