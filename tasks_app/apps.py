from django.apps import AppConfig


class TasksAppConfig(AppConfig):
    name = "tasks_app"
    verbose_name = "Tasks"

    def ready(self):
        # Connects the worker metrics to Celery's signals.
        from . import metrics  # noqa: F401
