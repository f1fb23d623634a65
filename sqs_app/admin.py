"""The admin: staff browse the message history and its timeline."""

from django.contrib import admin

from .models import Message, MessageEvent


class MessageEventInline(admin.TabularInline):
    model = MessageEvent
    extra = 0
    can_delete = False
    readonly_fields = ["kind", "at", "actor", "detail"]

    def has_add_permission(self, request, obj=None):
        return False  # the timeline is append-only, and only Wipsie appends


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["sqs_message_id", "queue", "task_type", "status", "priority", "sent_by", "created_at"]
    list_filter = ["queue", "status", "task_type", "priority"]
    search_fields = ["sqs_message_id", "standard_id", "correlation_id"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Message._meta.fields]
    inlines = [MessageEventInline]
    list_select_related = ["sent_by"]

    def has_add_permission(self, request):
        return False  # messages are sent, not typed into a table
