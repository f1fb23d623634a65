"""The history of every message Wipsie has seen, and what happened to it.

A `Message` is one SQS message (keyed by SQS's MessageId once SQS has accepted
it, and by the StandardMessage `id` carried in its body). Its `events` are an
append-only timeline: rows are added, never changed or removed.
"""

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone

from .permissions import MESSAGE_PERMISSIONS
from .queues import LOGICAL_QUEUES


class MessageStatus(models.TextChoices):
    # Recorded by Wipsie, not yet confirmed by SQS. A row stays here only if the
    # process died between the SendMessage call and the confirming write; the
    # next sighting of the message (by its `standard_id`) settles it.
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    RECEIVED = "received", "Received"
    PROCESSING = "processing", "Processing"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    RETRYING = "retrying", "Retrying"
    DEAD_LETTERED = "dead_lettered", "Dead-lettered"
    DELETED = "deleted", "Deleted"

    @classmethod
    def finished(cls) -> set[str]:
        """An outcome is recorded: a later delivery of the message is a duplicate."""
        return {cls.SUCCEEDED, cls.FAILED, cls.DEAD_LETTERED, cls.DELETED}


class EventKind(models.TextChoices):
    SENT = "sent", "Sent"
    RECEIVED = "received", "Received"
    DELETED = "deleted", "Deleted"
    PROCESSING = "processing", "Processing"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    RETRYING = "retrying", "Retrying"
    DEAD_LETTERED = "dead_lettered", "Dead-lettered"
    REPLAYED = "replayed", "Replayed"


class Message(models.Model):
    sqs_message_id = models.CharField("SQS message id", max_length=100, unique=True, null=True, blank=True)
    # The StandardMessage `id`. Unique per queue: it is how a duplicate send or a
    # duplicate delivery is recognised. Empty for bodies from other producers
    # that carry no id.
    standard_id = models.UUIDField("message id", null=True, blank=True, default=None)
    queue = models.CharField(max_length=50, db_index=True)
    body = models.JSONField(help_text="The body as stored in SQS (parsed JSON, or a string).")
    attributes = models.JSONField(default=dict, blank=True)
    task_type = models.CharField(max_length=100, blank=True, db_index=True)
    priority = models.CharField(max_length=10, blank=True)
    correlation_id = models.CharField(max_length=128, blank=True, db_index=True)
    source = models.CharField(max_length=20, blank=True)
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="sent_messages",
    )
    status = models.CharField(
        max_length=20, choices=MessageStatus.choices, default=MessageStatus.PENDING, db_index=True
    )
    # The latest receipt handle, so that a delete by handle can name its message.
    receipt_handle = models.CharField(max_length=1024, blank=True, db_index=True)
    receive_count = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # The Celery task that owns this message's processing; its result is the
    # django-celery-results TaskResult with this task_id.
    celery_task_id = models.CharField(max_length=255, blank=True, db_index=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Processing attempts so far.")
    # The claim of the attempt in progress: a lease that ends with the SQS
    # visibility timeout and is renewed with it (tasks_app.lifecycle). A
    # concurrent duplicate delivery finds it held; the redelivery after a
    # worker died finds it expired and takes over.
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="When a retrying message comes back on its queue."
    )
    processing_started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # A replay is a new message (new ids) sent from this one's body; the
    # original keeps its ids and history (sqs_app.operations.replay).
    replay_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replays"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = MESSAGE_PERMISSIONS
        constraints = [
            models.UniqueConstraint(fields=["queue", "standard_id"], name="unique_standard_id_per_queue"),
        ]
        indexes = [
            # The dashboard's outcome counts and chart: outcomes by when they happened.
            models.Index(fields=["status", "finished_at"], name="message_status_finished_idx"),
            # The oldest unfinished message per queue (queue overviews, /metrics)
            # and open counts by status read this index, not the whole history.
            models.Index(fields=["queue", "status", "created_at"], name="message_queue_status_created"),
        ]

    def __str__(self) -> str:
        return f"{self.queue}:{self.sqs_message_id or self.standard_id or self.pk}"

    @property
    def message_id(self) -> str | None:
        """The id the REST contract calls `message_id`: SQS's MessageId."""
        return self.sqs_message_id


class MessageEvent(models.Model):
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=EventKind.choices)
    # Usually "now"; a `sent` event is dated when SQS accepted the message.
    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.CharField(
        max_length=150, blank=True, help_text="Who caused it: a username, 'worker', 'sqs'."
    )
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.kind} at {self.at:%Y-%m-%d %H:%M:%S}"


class QueueGrant(models.Model):
    """Limits a group's members to some queues (see sqs_app.permissions for the rules)."""

    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="queue_grants")
    queue = models.CharField(max_length=50, choices=[(name, name) for name in LOGICAL_QUEUES])

    class Meta:
        ordering = ["group__name", "queue"]
        constraints = [models.UniqueConstraint(fields=["group", "queue"], name="unique_queue_grant")]

    def __str__(self) -> str:
        return f"{self.group}: {self.queue}"


# --- The audit log ---------------------------------------------------------------------


class AuditAction(models.TextChoices):
    SEND = "send", "Send"
    RECEIVE = "receive", "Receive"
    DELETE = "delete", "Delete"
    PURGE = "purge", "Purge"
    REPLAY = "replay", "Replay"
    REDRIVE = "redrive", "Redrive"
    PRUNE = "prune", "Prune history"
    SETUP = "setup", "Set up queues"
    # --- recurring polls (tasks_app.poll_schedules) ---
    POLL_PAUSE = "poll_pause", "Pause a recurring poll"
    POLL_RESUME = "poll_resume", "Resume a recurring poll"
    POLL_RUN = "poll_run", "Run a recurring poll now"
    POLL_STOP = "poll_stop", "Stop a recurring poll"
    # --- end of recurring polls ---


class AuditVia(models.TextChoices):
    API = "api", "API"
    ADMIN = "admin", "Admin"
    COMMAND = "command", "Management command"


class AuditEntry(models.Model):
    """One operator action: who did what to which queue and messages, through which door.

    Written by sqs_app.audit.audit_record, never edited. A single API send is
    not repeated here: its history row already names the sender and source.
    """

    at = models.DateTimeField(default=timezone.now)
    # A username, or the OS user (or --operator) of a management command.
    actor = models.CharField(max_length=150)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=20, choices=AuditAction.choices)
    via = models.CharField(max_length=10, choices=AuditVia.choices)
    queue = models.CharField(max_length=50, blank=True)
    message_ids = models.JSONField(default=list, blank=True, help_text="SQS or StandardMessage ids acted on.")
    count = models.PositiveIntegerField(default=0, help_text="Messages acted on.")
    succeeded = models.BooleanField(default=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"
        indexes = [
            models.Index(fields=["at"], name="audit_at"),
            models.Index(fields=["action", "at"], name="audit_action_at"),
            models.Index(fields=["queue", "at"], name="audit_queue_at"),
            models.Index(fields=["actor", "at"], name="audit_actor_at"),
        ]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.queue or ''} ({self.count}) at {self.at:%Y-%m-%d %H:%M:%S}"


# --- Operator runs: long operator actions, done in the background ----------------------


class RunKind(models.TextChoices):
    REPLAY = "replay", "Replay messages"
    REDRIVE = "redrive", "Redrive dead letters"
    DELETE_DEAD_LETTERS = "delete_dead_letters", "Delete dead letters"


class RunStatus(models.TextChoices):
    DRAFT = "draft", "Awaiting confirmation"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    STOPPED = "stopped", "Stopped"  # ended early, with its reason (SQS down, a poison message)
    CANCELLED = "cancelled", "Cancelled"

    @classmethod
    def active(cls) -> list[str]:
        """A worker may still act on the run."""
        return [cls.QUEUED, cls.RUNNING]

    @classmethod
    def finished(cls) -> list[str]:
        return [cls.DONE, cls.STOPPED, cls.CANCELLED]


class OperatorRun(models.Model):
    """One operator action over many messages, confirmed in the admin and done by a worker.

    A replay of every message matching a filter, or the redrive of a whole DLQ
    at a capped rate, can take minutes: the admin records the run (its exact
    items, or its bound), a thin Celery task works through it on Wipsie's own
    `celery` queue, and the admin shows its progress. Everything a worker needs
    to resume after being killed is here and in the items (sqs_app.operations.runs).
    """

    kind = models.CharField(max_length=30, choices=RunKind.choices)
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.DRAFT)
    # The DLQ's queue (redrive, delete), or the replay's target queue ("" = each message's own).
    queue = models.CharField(max_length=50, blank=True)
    # rate (messages per second, or null), to_queue, chosen DLQ message ids, the list filter ...
    parameters = models.JSONField(default=dict, blank=True)
    # What the operator confirmed: the exact number of items, or (a whole DLQ) its depth then.
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    stopped_reason = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.CharField(max_length=150, blank=True)
    via = models.CharField(max_length=10, choices=AuditVia.choices, default=AuditVia.ADMIN)
    created_at = models.DateTimeField(default=timezone.now)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The last item done: the progress page's "last progress", and the pacing across slices.
    progressed_at = models.DateTimeField(null=True, blank=True)
    # The worker working on it holds a lease, renewed with every item; another
    # delivery of its task waits for the lease to end instead of running beside it.
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=255, blank=True)
    # Not before then: a resumed run waits for the DLQ copies its killed worker
    # left hidden, so that it sees them again (sqs_app.operations.runs).
    resume_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "operator run"
        indexes = [models.Index(fields=["status", "created_at"], name="operator_run_status_created")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


class ItemOutcome(models.TextChoices):
    PENDING = "", "Pending"
    STARTED = "started", "Started"  # acted on, outcome not recorded yet (the worker may have died)
    SENT = "sent", "Sent"  # a redrive's send is done, its DLQ copy not deleted yet
    DONE = "done", "Done"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"

    @classmethod
    def open(cls) -> list[str]:
        return [cls.PENDING, cls.STARTED, cls.SENT]


class OperatorRunItem(models.Model):
    """One message of an operator run, and what happened to it. Written as it happens."""

    run = models.ForeignKey(OperatorRun, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    dlq_message_id = models.CharField(max_length=100, blank=True)
    key = models.CharField(max_length=100, blank=True, help_text="The StandardMessage id, when known.")
    outcome = models.CharField(max_length=10, choices=ItemOutcome.choices, blank=True, default="")
    new_message_id = models.CharField(max_length=100, blank=True)
    new_id = models.CharField(max_length=100, blank=True)
    detail = models.TextField(blank=True, help_text="Why it was skipped, or how it failed.")
    # A DLQ copy received by this item stays hidden until then (its receive's visibility).
    hidden_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run", "position"]
        constraints = [models.UniqueConstraint(fields=["run", "position"], name="unique_run_item_position")]
        indexes = [models.Index(fields=["run", "outcome", "position"], name="run_item_outcome")]

    def __str__(self) -> str:
        return f"{self.run} item {self.position}: {self.outcome or 'pending'}"
