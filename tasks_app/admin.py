"""The admin for polls: recurring polls (on django-celery-beat) and each poll's result.

Pause, resume and "run now" of the timing itself are django-celery-beat's
own admin actions on the poll's periodic task, one click away.
"""

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from sqs_app.permissions import Action, allowed

from . import polling
from .models import PollResult, PollSchedule


@admin.register(PollSchedule)
class PollScheduleAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "source_url",
        "interval_seconds",
        "is_active",
        "last_poll_time",
        "next_run",
        "beat_task",
    ]
    list_filter = ["periodic_task__enabled"]
    search_fields = ["source_url", "correlation_id"]
    readonly_fields = ["origin", "periodic_task", "created_at", "stopped_at", "last_poll_time"]
    list_select_related = ["periodic_task"]
    actions = ["stop_polls"]

    def has_add_permission(self, request):
        return False  # a recurring poll starts from a data_polling message with poll_interval

    @admin.display(description="active", boolean=True, ordering="periodic_task__enabled")
    def is_active(self, obj):
        return obj.active

    @admin.display(description="next run")
    def next_run(self, obj):
        return obj.next_poll_at or "-"

    @admin.display(description="periodic task")
    def beat_task(self, obj):
        if obj.periodic_task_id is None:
            return "-"
        url = reverse("admin:django_celery_beat_periodictask_change", args=[obj.periodic_task_id])
        return format_html('<a href="{}">schedule</a>', url)

    @admin.action(description="Stop the selected recurring polls")
    def stop_polls(self, request, queryset):
        if not allowed(request.user, Action.MANAGE_POLLS):
            self.message_user(request, "You may not manage recurring polls.", messages.ERROR)
            return
        stopped = [
            polling.poll_schedule_stop(schedule=s) for s in queryset.filter(periodic_task__enabled=True)
        ]
        self.message_user(request, f"Stopped {len(stopped)} poll(s).", messages.SUCCESS)


@admin.register(PollResult)
class PollResultAdmin(admin.ModelAdmin):
    list_display = ["polled_at", "source_url", "status_code", "item_count", "duration_ms", "truncated"]
    list_filter = ["status_code", "truncated"]
    search_fields = ["source_url"]
    readonly_fields = [f.name for f in PollResult._meta.fields]

    def has_add_permission(self, request):
        return False
