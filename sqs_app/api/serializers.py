"""Shapes of the /sqs REST contract: what requests carry and what responses look like.

Message validation itself lives in sqs_app.schemas; these serializers only
frame it for HTTP. The response serializers exist so that the OpenAPI schema
shows the exact shapes the spec fixes.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ..models import EventKind, Message, MessageEvent, MessageStatus
from ..queues import LOGICAL_QUEUES
from ..schemas import AttributesField, StandardMessageSerializer

MAX_BATCH_SIZE = 10  # SQS's SendMessageBatch limit


# --- Requests ------------------------------------------------------------------------


@extend_schema_field({"type": "string", "enum": list(LOGICAL_QUEUES)})
class QueueNameField(serializers.CharField):
    """A logical queue name. Any other name is QUEUE_NOT_FOUND (404), naming the queues."""

    def __init__(self, **kwargs):
        super().__init__(max_length=80, **kwargs)


class SendRequestSerializer(serializers.Serializer):
    queue_name = QueueNameField()
    message = StandardMessageSerializer()
    attributes = AttributesField(required=False, default=dict)


class BatchEntrySerializer(serializers.Serializer):
    message = StandardMessageSerializer()
    attributes = AttributesField(required=False, default=dict)


class SendBatchRequestSerializer(serializers.Serializer):
    queue_name = QueueNameField()
    messages = BatchEntrySerializer(many=True, min_length=1, max_length=MAX_BATCH_SIZE)


class ReceiveQuerySerializer(serializers.Serializer):
    max_messages = serializers.IntegerField(min_value=1, max_value=10, default=1)
    wait_time_seconds = serializers.IntegerField(min_value=0, max_value=20, default=0)
    visibility_timeout = serializers.IntegerField(min_value=0, max_value=43200, required=False)


class DeleteQuerySerializer(serializers.Serializer):
    receipt_handle = serializers.CharField(max_length=1024)


class MessageListQuerySerializer(serializers.Serializer):
    queue = serializers.CharField(required=False)
    status = serializers.ChoiceField(choices=MessageStatus.choices, required=False)
    task_type = serializers.CharField(required=False)
    correlation_id = serializers.CharField(required=False)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)
    page = serializers.IntegerField(min_value=1, required=False)
    page_size = serializers.IntegerField(min_value=1, max_value=200, required=False)


class RedriveRequestSerializer(serializers.Serializer):
    message_ids = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        # An empty selection is a mistake, not "all": absent already means all.
        allow_empty=False,
        min_length=1,  # the same rule, so that the OpenAPI schema says minItems
        max_length=100,
        help_text="Only these messages (StandardMessage ids or SQS ids); all when absent.",
    )
    max_messages = serializers.IntegerField(min_value=1, max_value=1000, default=100)


# --- Responses -----------------------------------------------------------------------


class QueueListResponseSerializer(serializers.Serializer):
    available_queues = serializers.ListField(child=serializers.CharField())
    region = serializers.CharField()


class SendResponseSerializer(serializers.Serializer):
    message_id = serializers.CharField()
    queue = serializers.CharField()
    status = serializers.CharField()
    timestamp = serializers.CharField()


class BatchEntryResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the message in the request.")
    status = serializers.ChoiceField(choices=["sent", "failed"])
    id = serializers.CharField(help_text="The StandardMessage id.")
    message_id = serializers.CharField(allow_null=True, help_text="SQS's MessageId.")
    error = serializers.DictField(allow_null=True, help_text="{code, message} when failed.")


class SendBatchResponseSerializer(serializers.Serializer):
    queue = serializers.CharField()
    successful = serializers.IntegerField()
    failed = serializers.IntegerField()
    results = BatchEntryResultSerializer(many=True)


class ReceivedMessageSerializer(serializers.Serializer):
    message_id = serializers.CharField()
    body = serializers.JSONField()
    attributes = serializers.DictField()
    receipt_handle = serializers.CharField()


class ReceiveResponseSerializer(serializers.Serializer):
    queue = serializers.CharField()
    message_count = serializers.IntegerField()
    messages = ReceivedMessageSerializer(many=True)


class DeleteResponseSerializer(serializers.Serializer):
    status = serializers.CharField()
    queue = serializers.CharField()


class TestMessageResultSerializer(serializers.Serializer):
    message_id = serializers.CharField()
    queue = serializers.CharField()
    status = serializers.CharField()


class TestMessageResponseSerializer(serializers.Serializer):
    status = serializers.CharField()
    test_message = serializers.DictField()
    result = TestMessageResultSerializer()


class ReplayedSerializer(serializers.Serializer):
    dlq_message_id = serializers.CharField()
    message_id = serializers.CharField(help_text="The new SQS MessageId on the queue.")


class RedriveResponseSerializer(serializers.Serializer):
    queue = serializers.CharField()
    replayed = serializers.IntegerField()
    messages = ReplayedSerializer(many=True)


class LivenessResponseSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok"])


class HealthResponseSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "error"])
    checks = serializers.DictField(child=serializers.DictField())


class MessageEventSerializer(serializers.ModelSerializer):
    kind = serializers.ChoiceField(choices=EventKind.choices)

    class Meta:
        model = MessageEvent
        fields = ["kind", "at", "actor", "detail"]


class MessageRecordSerializer(serializers.ModelSerializer):
    """A message in the history list."""

    message_id = serializers.CharField(source="sqs_message_id", allow_null=True)
    id = serializers.UUIDField(source="standard_id", allow_null=True)
    sent_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Message
        fields = [
            "message_id",
            "id",
            "queue",
            "status",
            "task_type",
            "priority",
            "correlation_id",
            "source",
            "sent_by",
            "receive_count",
            "attempts",
            "last_error",
            "created_at",
            "updated_at",
            "sent_at",
            "processing_started_at",
            "finished_at",
            "next_attempt_at",
        ]


class MessagePageSerializer(serializers.Serializer):
    """A page of the history (PageNumberPagination's shape)."""

    count = serializers.IntegerField(help_text="Messages matching the filters, on all pages.")
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = MessageRecordSerializer(many=True)


class TaskResultSerializer(serializers.Serializer):
    """The Celery task result (django-celery-results) of the message's processing."""

    task_id = serializers.CharField()
    task_name = serializers.CharField(allow_null=True)
    status = serializers.CharField(help_text="Celery state: STARTED, RETRY, SUCCESS, FAILURE.")
    result = serializers.JSONField(allow_null=True, help_text="The output, or the error.")
    date_created = serializers.DateTimeField()
    date_done = serializers.DateTimeField(allow_null=True)


class MessageDetailSerializer(MessageRecordSerializer):
    """One message with its body, attributes, event timeline and task result."""

    events = MessageEventSerializer(many=True, read_only=True)
    task_result = serializers.SerializerMethodField()

    class Meta(MessageRecordSerializer.Meta):
        fields = MessageRecordSerializer.Meta.fields + ["body", "attributes", "events", "task_result"]

    @extend_schema_field(TaskResultSerializer(allow_null=True))
    def get_task_result(self, message: Message):
        task_result = self.context.get("task_result")
        return TaskResultSerializer(task_result).data if task_result else None


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="UPPER_SNAKE error code, e.g. QUEUE_NOT_FOUND.")
    message = serializers.CharField()
    details = serializers.DictField()
    timestamp = serializers.CharField()
    request_id = serializers.CharField(help_text="Also sent as the X-Request-ID header.")


class ErrorEnvelopeSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()
