"""Message events across all messages: every send, receive, outcome and replay, with its actor (read-only).

Each message's own events are on its trace page; operator actions are in the
audit log (sqs_app.admin_audit).
"""

from django.contrib import admin
from unfold.admin import ModelAdmin
from unfold.contrib.filters.admin import RangeDateTimeFilter

from .. import selectors
from ..models import Message, MessageEvent
from .links import change_link


@admin.register(MessageEvent)
class MessageEventAdmin(ModelAdmin):
    list_display = ["at", "kind", "actor", "message_link", "queue"]
    list_filter = ["kind", ("at", RangeDateTimeFilter), "message__queue"]
    list_filter_submit = True
    search_fields = ["=actor"]
    list_select_related = ["message"]
    show_full_result_count = False
    readonly_fields = ["message", "kind", "at", "actor", "detail"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        visible = Message.objects.filter(selectors.messages_visible_to(request.user))
        return super().get_queryset(request).filter(message__in=visible)

    @admin.display(description="message")
    def message_link(self, obj):
        return change_link("admin:sqs_app_message_change", obj.message_id, obj.message)

    @admin.display(description="queue", ordering="message__queue")
    def queue(self, obj):
        return obj.message.queue
