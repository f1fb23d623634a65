"""Beat's scheduler: django-celery-beat's, touching the heartbeat file on every tick.

Beat's loop calls `tick()` at least every max_interval (5 s with the
DatabaseScheduler), whether or not a task is due. Each tick touches
WIPSIE_HEARTBEAT_FILE (tasks_app.heartbeat) first, so `python -m
tasks_app.heartbeat --max-age 60` (beat's liveness probe in k8s/ and its
compose health check) fails once the loop has been stuck for a minute,
a tick hung on the database included.
"""

from django_celery_beat.schedulers import DatabaseScheduler

from . import heartbeat


class HeartbeatScheduler(DatabaseScheduler):
    def tick(self, *args, **kwargs):
        heartbeat.beat()
        return super().tick(*args, **kwargs)
