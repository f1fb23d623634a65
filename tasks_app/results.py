"""Task results in django-celery-results, written in one statement.

django-celery-results stores a result with get_or_create then save: a
SELECT, a savepoint and an INSERT or UPDATE for every task. Wipsie writes
the same row with one upsert (INSERT ... ON CONFLICT (task_id) DO UPDATE,
sqs_app.inserts), which PostgreSQL and SQLite both do, with no transaction
around it. Everything else is django-celery-results'
own backend, so its admin, models and `AsyncResult` lookups work as usual.
"""

from django_celery_results.backends.database import DatabaseBackend
from django_celery_results.managers import TaskResultManager
from django_celery_results.models import TaskResult

from sqs_app.inserts import insert_rows

_STORED_FIELDS = [
    "status",
    "result",
    "traceback",
    "meta",
    "content_encoding",
    "content_type",
    "periodic_task_name",
    "task_name",
    "task_args",
    "task_kwargs",
    "worker",
    "date_done",
]


class UpsertingTaskResultManager(TaskResultManager):
    def store_result(self, content_type, content_encoding, task_id, result, status, **fields):
        fields.pop("using", None)  # one database: insert_rows writes to the default one
        fields.pop("date_started", None)  # only for STARTED, which Wipsie does not store
        row = self.model(
            task_id=task_id,
            status=status,
            result=result,
            content_type=content_type,
            content_encoding=content_encoding,
            **fields,
        )
        insert_rows([row], on_conflict=("task_id",), update=tuple(_STORED_FIELDS))
        return row


class RecordedTaskResult(TaskResult):
    """django-celery-results' TaskResult, stored with one upsert."""

    objects = UpsertingTaskResultManager()

    class Meta:
        proxy = True
        app_label = "tasks_app"


class RecordingResultBackend(DatabaseBackend):
    TaskModel = RecordedTaskResult
