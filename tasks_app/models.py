"""What the data-polling family keeps: recurring poll schedules and each poll's result."""

from django.db import models

from sqs_app.models import Message


class PollSchedule(models.Model):
    """A recurring poll, created by a data_polling message that gives a poll_interval.

    Beat enqueues a new data_polling message (source "scheduler") whenever one
    is due; setting `active` off (admin or API) stops it.
    """

    origin = models.OneToOneField(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="poll_schedule"
    )
    source_url = models.URLField(max_length=2048)
    filters = models.JSONField(default=dict, blank=True)
    interval_seconds = models.PositiveIntegerField()
    correlation_id = models.CharField(max_length=128, blank=True)
    active = models.BooleanField(default=True, db_index=True)
    next_poll_at = models.DateTimeField(db_index=True)
    last_poll_time = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"every {self.interval_seconds}s: {self.source_url}"


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

    def __str__(self) -> str:
        return f"{self.source_url} -> {self.status_code} ({self.item_count} items)"
