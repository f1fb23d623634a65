"""The Celery application: configured from Django settings (the CELERY_ namespace)."""

import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wipsie_site.settings")

app = Celery("wipsie_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# Workers also consume the Wipsie task queues (plain StandardMessage bodies).
# Named by string: the step imports models, which must wait for Django setup.
app.steps["consumer"].add("tasks_app.consumer:StandardMessageConsumer")


@worker_init.connect
def _plain_database_connections_in_workers(**kwargs) -> None:
    """Workers use one plain, health-checked connection per process, not psycopg's pool.

    Celery's Django fixup closes every connection before and after each task
    in a prefork worker, closing the pool too: a pool there would open
    DATABASE_POOL_SIZE connections for every task (measured: about 11) only to
    throw them away. Without it, each pool process opens one connection per
    task, and the consumer in the main process keeps its own for a minute.
    """
    from django.conf import settings
    from django.db import connections

    database = settings.DATABASES["default"]
    if database.get("OPTIONS", {}).pop("pool", None) is not None:
        database["CONN_MAX_AGE"] = 60
        database["CONN_HEALTH_CHECKS"] = True
        connections.close_all()
