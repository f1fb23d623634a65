"""The Celery application: configured from Django settings (the CELERY_ namespace).

Workers consume each family's queue directly (tasks_app.worker, through the
transport in tasks_app.sqs_transport); see settings' Celery section. The
`celery worker` and `celery beat` programs log their banners as records
(tasks_app.programs), so that LOG_FORMAT=json holds for every line.
"""

import os
from functools import cached_property

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wipsie_site.settings")


class WipsieCelery(Celery):
    """Celery whose `worker` and `beat` programs write nothing but log records (tasks_app.programs)."""

    @cached_property
    def Worker(self):  # noqa: N802 - Celery's name
        return self.subclass_with_self("tasks_app.programs:Worker")

    @cached_property
    def Beat(self):  # noqa: N802 - Celery's name
        return self.subclass_with_self("tasks_app.programs:Beat")


app = WipsieCelery("wipsie_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _plain_database_connections_in_workers(**kwargs) -> None:
    """Workers use one plain, health-checked connection per process, not psycopg's pool.

    A pool in every prefork process would hold DATABASE_POOL_SIZE connections
    each, for a process that runs one task at a time. With
    CELERY_DB_REUSE_MAX, Celery keeps each process's one connection across
    tasks instead of opening a new one per task.
    """
    from django.conf import settings
    from django.db import connections

    database = settings.DATABASES["default"]
    if database.get("OPTIONS", {}).pop("pool", None) is not None:
        database["CONN_MAX_AGE"] = 300
        database["CONN_HEALTH_CHECKS"] = True
        connections.close_all()
