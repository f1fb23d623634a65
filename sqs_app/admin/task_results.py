"""Celery's task results (django-celery-results), in the console's style: read-only, no Add."""

from django.contrib import admin
from django_celery_results.admin import TaskResultAdmin as CeleryTaskResultAdmin
from django_celery_results.models import GroupResult, TaskResult
from unfold.admin import ModelAdmin

for model in (TaskResult, GroupResult):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


@admin.register(TaskResult)
class TaskResultAdmin(ModelAdmin, CeleryTaskResultAdmin):
    list_display = ["task_id", "task_name", "status", "date_done", "worker"]
    list_filter = ["status", "task_name", "date_done"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False  # Celery writes these; nobody types them in

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
