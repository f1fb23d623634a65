from django.apps import AppConfig


class TasksAppConfig(AppConfig):
    name = "tasks_app"
    verbose_name = "Tasks"

    def ready(self):
        # Connects the worker metrics, and the consumer list's clean exit, to Celery's signals.
        from . import consumers, metrics  # noqa: F401
