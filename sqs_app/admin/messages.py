"""The message history: one line per message, filters, search, export, and the trace page.

History is a record of what happened: nothing here adds, edits or deletes a
row. The one action, replay, makes a draft operator run of exactly the
messages selected (or all matching the filter, across pages), confirmed on
its own page and done by a worker (runs.py); a message's own page replays it
at once, optionally edited (replay.py).
"""

import contextlib
import uuid

from django.contrib import admin, messages
from django.contrib.admin import RelatedFieldListFilter
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, TextField
from django.db.models.functions import Cast, Upper
from django.http import HttpResponseRedirect
from django.utils import timezone
from django.utils.html import format_html
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import ChoicesDropdownFilter, RangeDateTimeFilter
from unfold.decorators import display

from .. import selectors
from ..errors import WipsieError
from ..models import Message, MessageStatus
from ..operations import runs as operator_runs
from ..permissions import Action, allowed
from ..queues import LOGICAL_QUEUES
from ..schemas import PRIORITIES, SOURCES, TASK_DATA_SCHEMAS
from . import export, guards, queues, runs, send, trace
from .pages import page_path

STATUS_LABELS = {
    MessageStatus.PENDING: "info",
    MessageStatus.SENT: "info",
    MessageStatus.RECEIVED: "info",
    **trace.STATUS_LABELS,
}


def short_id(value, *, keep: int = 8) -> str:
    """An id cut to its first characters, the whole of it one click away (copy) and in the tooltip."""
    if not value:
        return "-"
    value = str(value)
    return format_html(
        '<span class="wipsie-id" title="{}"><code>{}</code>'
        '<button type="button" class="wipsie-copy" data-copy="{}" aria-label="Copy {}" '
        'onclick="navigator.clipboard && navigator.clipboard.writeText(this.dataset.copy)">'
        '<span class="material-symbols-outlined">content_copy</span></button></span>',
        value,
        value[:keep] + ("…" if len(value) > keep else ""),
        value,
        value,
    )


def age(moment) -> str:
    """How long ago, in one short unit: 42s, 5m, 3h, 2d."""
    if moment is None:
        return "-"
    seconds = max(0, int((timezone.now() - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def choices_filter(field: str, title: str, values) -> type[admin.SimpleListFilter]:
    """A list filter with fixed choices: no SELECT DISTINCT over the whole history to find them."""

    class FixedChoicesFilter(admin.SimpleListFilter):
        parameter_name = f"{field}__exact"

        def lookups(self, request, model_admin):
            return [(value, value) for value in values]

        def queryset(self, request, queryset):
            return queryset.filter(**{field: self.value()}) if self.value() else queryset

    FixedChoicesFilter.title = title
    return FixedChoicesFilter


def summary_of(message: Message) -> str:
    body = message.body if isinstance(message.body, dict) else {}
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    text = body.get("message") or data.get("subject") or data.get("source_url") or data.get("operation")
    return str(text if text else message.body)[:120]


@admin.register(Message)
class MessageAdmin(ModelAdmin):
    list_display = [
        "message_id_short",
        "task_type",
        "status_badge",
        "queue",
        "attempts",
        "age",
        "sender",
        "summary",
    ]
    list_display_links = ["message_id_short"]
    # Fixed choices (the schema's), so that drawing the filters reads nothing from a
    # million-row history; the counts behind each are left out for the same reason.
    list_filter = [
        choices_filter("queue", "queue", LOGICAL_QUEUES),
        ("status", ChoicesDropdownFilter),
        choices_filter("task_type", "task type", TASK_DATA_SCHEMAS),
        choices_filter("priority", "priority", PRIORITIES),
        choices_filter("source", "source", SOURCES),
        ("sent_by", RelatedFieldListFilter),
        ("created_at", RangeDateTimeFilter),
    ]
    list_filter_submit = True  # the date range needs an "apply" button
    search_fields = ["sqs_message_id"]  # the real search is get_search_results, below
    search_help_text = (
        "An SQS message id, a StandardMessage id, a correlation id, or text in the body or error."
    )
    list_select_related = ["sent_by"]
    list_per_page = 50
    show_full_result_count = False  # a COUNT(*) over a million rows on every page is not worth it
    actions = ["replay"]
    change_list_template = "admin/sqs_app/message/change_list.html"

    # --- history is read-only -----------------------------------------------------------

    def has_add_permission(self, request):
        return False  # messages are sent (see "Send"), not typed into a table

    def has_change_permission(self, request, obj=None):
        return False  # history is a record of what happened

    def has_delete_permission(self, request, obj=None):
        return False  # ...and it is kept

    def has_replay_permission(self, request):
        return guards.can(request, Action.REPLAY)

    def get_queryset(self, request):
        # As in the API: the messages they sent, and with "view all" those on their queues.
        return super().get_queryset(request).filter(selectors.messages_visible_to(request.user))

    def changelist_view(self, request, extra_context=None):
        action = request.POST.get("action") if request.method == "POST" else None
        if action and action in self.actions and action not in self.get_actions(request):
            # Django would only say "no action selected"; a crafted POST is refused outright.
            raise PermissionDenied(f"Not permitted: {action}")
        extra_context = {
            **(extra_context or {}),
            "can_send": guards.can(request, Action.SEND),
            "export_query": request.GET.urlencode(),
        }
        return super().changelist_view(request, extra_context)

    # --- search: exact ids, and text in the body or the error ---------------------------------

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        # Ids match exactly (their indexes serve them); text is a substring
        # search, served on PostgreSQL by the trigram indexes of migration 0007.
        match = Q(sqs_message_id=term) | Q(correlation_id=term)
        with contextlib.suppress(ValueError):
            match |= Q(standard_id=uuid.UUID(term))
        match |= Q(body_text__contains=term.upper()) | Q(error_text__contains=term.upper())
        queryset = queryset.annotate(
            body_text=Upper(Cast("body", TextField())), error_text=Upper("last_error")
        ).filter(match)
        return queryset, False

    # --- columns --------------------------------------------------------------------------------

    @display(description="message id", ordering="sqs_message_id")
    def message_id_short(self, obj):
        return short_id(obj.sqs_message_id or obj.standard_id)

    @display(description="status", ordering="status", label=STATUS_LABELS)
    def status_badge(self, obj):
        return obj.status

    @display(description="age", ordering="created_at")
    def age(self, obj):
        return format_html('<span title="{}">{}</span>', trace.exact(obj.created_at), age(obj.created_at))

    @display(description="sender", ordering="sent_by__username")
    def sender(self, obj):
        return obj.sent_by.username if obj.sent_by else (obj.source or "-")

    @display(description="summary or last error")
    def summary(self, obj):
        if obj.last_error:
            return format_html('<span class="wipsie-cell wipsie-error">{}</span>', obj.last_error[:160])
        return format_html('<span class="wipsie-cell">{}</span>', summary_of(obj))

    # --- the trace page ---------------------------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return trace.trace_view(self, request, object_id)

    # --- replay ------------------------------------------------------------------------------------

    @admin.action(description="Replay the selected messages as new messages…", permissions=["replay"])
    def replay(self, request, queryset):
        """A draft run of exactly these messages; its page shows the count and asks for confirmation.

        With "Select all N", `queryset` is every message matching the list's
        filter and search, on every page. Messages on queues the user may not
        replay are left out, and the page says how many and why.
        """
        per_queue = dict(queryset.order_by().values_list("queue").annotate(n=Count("id")))
        permitted = [queue for queue in per_queue if allowed(request.user, Action.REPLAY, queue=queue)]
        if not permitted:
            raise PermissionDenied(f"Not permitted: replay_message on {', '.join(sorted(per_queue))}")
        refused = {queue: n for queue, n in per_queue.items() if queue not in permitted}
        across = request.POST.get("select_across") == "1"
        selection = f"all matching {request.GET.urlencode() or 'the list'}" if across else "selected"
        if refused:
            selection += "; left out, not permitted: " + ", ".join(f"{n} on {q}" for q, n in refused.items())
        try:
            run = operator_runs.run_draft_replay(
                messages=queryset.filter(queue__in=permitted),
                to_queue=None,
                rate=None,
                user=request.user,
                selection=selection,
            )
        except WipsieError as exc:
            self.message_user(request, f"{exc.error_code}: {exc.message}", messages.ERROR)
            return None
        return HttpResponseRedirect(runs.run_url(run))

    # --- the other pages of the console ------------------------------------------------------------

    def get_urls(self):
        from . import dead_letters, replay  # here, not above: they import this module

        custom = [
            page_path(self, "send/", send.send_view, name="sqs_app_message_send"),
            page_path(self, "queues/", queues.queues_view, name="sqs_app_message_queues"),
            page_path(
                self, "queues/<str:queue_name>/purge/", queues.purge_view, name="sqs_app_message_purge"
            ),
            page_path(
                self, "dead-letters/", dead_letters.dead_letters_index, name="sqs_app_message_dead_letters"
            ),
            page_path(
                self,
                "dead-letters/<str:queue>/",
                dead_letters.dead_letter_queue_view,
                name="sqs_app_message_dead_letter_queue",
            ),
            page_path(self, "<path:object_id>/replay/", replay.replay_view, name="sqs_app_message_replay"),
            page_path(self, "export/<str:fmt>/", export.export_view, name="sqs_app_message_export"),
        ]
        return custom + super().get_urls()
