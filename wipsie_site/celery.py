"""The Celery application: configured from Django settings (the CELERY_ namespace)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wipsie_site.settings")

app = Celery("wipsie_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# Workers also consume the Wipsie task queues (plain StandardMessage bodies).
# Named by string: the step imports models, which must wait for Django setup.
app.steps["consumer"].add("tasks_app.consumer:StandardMessageConsumer")
