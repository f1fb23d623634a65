"""What the data-polling family keeps: recurring poll schedules and each poll's result."""

from datetime import timedelta

from django.db import models
from django_celery_beat.models import PeriodicTask

from sqs_app.models import Message

from .results import RecordedTaskResult  # noqa: F401 - the result backend's proxy model


class PollSchedule(models.Model):
    """A recurring poll, created by a data_polling message that gives a poll_interval.

    Its timing lives in django-celery-beat: `periodic_task` runs every
    `interval_seconds` and sends one data_polling message (source
    "scheduler"). Its `state` (tasks_app.poll_schedules): active while that
    task is enabled, paused while it is disabled, stopped for good once
    `stopped_at` is set.
    """

    ACTIVE, PAUSED, STOPPED = "active", "paused", "stopped"

    origin = models.OneToOneField(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="poll_schedule"
    )
    source_url = models.URLField(max_length=2048)
    filters = models.JSONField(default=dict, blank=True)
    interval_seconds = models.PositiveIntegerField()
    correlation_id = models.CharField(max_length=128, blank=True)
    periodic_task = models.OneToOneField(
        PeriodicTask, on_delete=models.SET_NULL, null=True, blank=True, related_name="poll_schedule"
    )
    last_poll_time = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "recurring poll"

    def __str__(self) -> str:
        return f"every {self.interval_seconds}s: {self.source_url}"

    @property
    def active(self) -> bool:
        return self.state == self.ACTIVE

    @property
    def state(self) -> str:
        if self.stopped_at is not None:
            return self.STOPPED
        return self.ACTIVE if self.periodic_task and self.periodic_task.enabled else self.PAUSED

    @property
    def next_poll_at(self):
        """When beat runs it next (None once stopped)."""
        task = self.periodic_task
        if not self.active:
            return None
        last = task.last_run_at or task.start_time or task.date_changed
        return last + timedelta(seconds=self.interval_seconds) if last else None


class PollResult(models.Model):
    message = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="poll_results"
    )
    schedule = models.ForeignKey(
        PollSchedule, on_delete=models.SET_NULL, null=True, blank=True, related_name="results"
    )
    source_url = models.URLField(max_length=2048)
    status_code = models.PositiveIntegerField()
    duration_ms = models.FloatField()
    item_count = models.PositiveIntegerField(help_text="Records kept after the filters.")
    payload = models.JSONField(
        null=True, blank=True, help_text="The filtered payload, if it fits the size bound."
    )
    excerpt = models.TextField(
        blank=True, help_text="The start of the filtered payload, when it was too large to keep."
    )
    truncated = models.BooleanField(default=False)
    polled_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-polled_at"]
        # Each poll's latest result (the recurring polls page) is read from the index
        # pollresult_schedule_latest, created by migration 0003 (covering on PostgreSQL).

    def __str__(self) -> str:
        return f"{self.source_url} -> {self.status_code} ({self.item_count} items)"


class QueueConsumer(models.Model):
    """A worker process consuming a queue, and when it last polled it (tasks_app.consumers).

    One row per (host, process, queue), upserted by the worker's main process
    every few seconds and removed when it shuts down cleanly. The one store
    every process of every deployment shares is the database, so /health and
    `sqs_queues` read here which queues have consumers that stopped polling.
    """

    queue = models.CharField(max_length=80)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    last_poll_at = models.DateTimeField()

    class Meta:
        ordering = ["queue", "hostname", "pid"]
        constraints = [
            models.UniqueConstraint(fields=["hostname", "pid", "queue"], name="tasks_app_consumer_per_queue")
        ]

    def __str__(self) -> str:
        return f"{self.hostname}:{self.pid} on {self.queue}"
