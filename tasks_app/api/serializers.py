from rest_framework import serializers

from ..models import PollSchedule


class PollScheduleSerializer(serializers.ModelSerializer):
    origin_message_id = serializers.CharField(source="origin.sqs_message_id", default=None, read_only=True)
    active = serializers.BooleanField(read_only=True)
    state = serializers.ChoiceField(
        choices=["active", "paused", "stopped"],
        read_only=True,
        help_text="active: beat runs it every interval; paused: until resumed; stopped: for good.",
    )
    next_poll_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = PollSchedule
        fields = [
            "id",
            "source_url",
            "filters",
            "interval_seconds",
            "active",
            "state",
            "next_poll_at",
            "last_poll_time",
            "created_at",
            "stopped_at",
            "origin_message_id",
        ]
