"""The admin for polls: stop a recurring poll, browse each poll's result."""

from django.contrib import admin, messages

from . import polling
from .models import PollResult, PollSchedule


@admin.register(PollSchedule)
class PollScheduleAdmin(admin.ModelAdmin):
    list_display = ["id", "source_url", "interval_seconds", "active", "last_poll_time", "next_poll_at"]
    list_filter = ["active"]
    search_fields = ["source_url", "correlation_id"]
    readonly_fields = ["origin", "created_at", "stopped_at", "last_poll_time"]
    actions = ["stop_polls"]

    @admin.action(description="Stop the selected recurring polls")
    def stop_polls(self, request, queryset):
        stopped = [polling.poll_schedule_stop(schedule=s) for s in queryset.filter(active=True)]
        self.message_user(request, f"Stopped {len(stopped)} poll(s).", messages.SUCCESS)


@admin.register(PollResult)
class PollResultAdmin(admin.ModelAdmin):
    list_display = ["polled_at", "source_url", "status_code", "item_count", "duration_ms", "truncated"]
    list_filter = ["status_code", "truncated"]
    search_fields = ["source_url"]
    readonly_fields = [f.name for f in PollResult._meta.fields]

    def has_add_permission(self, request):
        return False
