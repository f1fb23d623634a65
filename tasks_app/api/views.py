"""Recurring polls: list them; pause, resume, run now or stop one.

Everyone sees the polls their own messages started; operators (MANAGE_POLLS)
and those who may view every message (VIEW_ALL) see them all. Every action
takes MANAGE_POLLS, and is written to the audit log by tasks_app.poll_schedules.
"""

from django.db.models import Q
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from sqs_app.api.permissions import requires
from sqs_app.api.serializers import SendResponseSerializer
from sqs_app.api.views import COMMON_ERRORS, DENIED, SQS_ERRORS, error_responses
from sqs_app.models import AuditVia
from sqs_app.permissions import Action

from .. import poll_schedules
from ..models import PollSchedule
from .serializers import PollScheduleSerializer

# A stopped poll is final: pausing, resuming or running it is POLL_STOPPED.
STOPPED = 409


class PollListView(APIView):
    @extend_schema(
        summary="Recurring polls",
        responses={200: PollScheduleSerializer(many=True), **error_responses(404, *COMMON_ERRORS)},
    )
    def get(self, request):
        schedules = poll_schedules.poll_schedules_visible_to(request.user)
        if request.query_params.get("active") in ("true", "false"):
            active = Q(periodic_task__enabled=True, stopped_at__isnull=True)
            schedules = schedules.filter(active if request.query_params["active"] == "true" else ~active)
        return Response(PollScheduleSerializer(schedules, many=True).data)


class PollActionView(APIView):
    """One action on one recurring poll; subclasses name the service."""

    permission_classes = requires(Action.MANAGE_POLLS)

    def schedule(self, schedule_id: int) -> PollSchedule:
        return get_object_or_404(PollSchedule.objects.select_related("periodic_task"), pk=schedule_id)


class PollStopView(PollActionView):
    @extend_schema(
        summary="Stop a recurring poll (final)",
        request=None,
        responses={200: PollScheduleSerializer, **error_responses(DENIED, 404, *COMMON_ERRORS)},
    )
    def post(self, request, schedule_id: int):
        schedule = poll_schedules.poll_schedule_stop(
            schedule=self.schedule(schedule_id), user=request.user, via=AuditVia.API
        )
        return Response(PollScheduleSerializer(schedule).data)


class PollPauseView(PollActionView):
    @extend_schema(
        summary="Pause a recurring poll",
        description="Beat sends nothing for it until it is resumed. Pausing a paused poll changes nothing.",
        request=None,
        responses={200: PollScheduleSerializer, **error_responses(DENIED, 404, STOPPED, *COMMON_ERRORS)},
    )
    def post(self, request, schedule_id: int):
        schedule = poll_schedules.poll_schedule_pause(
            schedule=self.schedule(schedule_id), user=request.user, via=AuditVia.API
        )
        return Response(PollScheduleSerializer(schedule).data)


class PollResumeView(PollActionView):
    @extend_schema(
        summary="Resume a paused recurring poll",
        description="Its next run is one interval from now.",
        request=None,
        responses={200: PollScheduleSerializer, **error_responses(DENIED, 404, STOPPED, *COMMON_ERRORS)},
    )
    def post(self, request, schedule_id: int):
        schedule = poll_schedules.poll_schedule_resume(
            schedule=self.schedule(schedule_id), user=request.user, via=AuditVia.API
        )
        return Response(PollScheduleSerializer(schedule).data)


class PollRunView(PollActionView):
    @extend_schema(
        summary="Run a recurring poll now",
        description=(
            "Sends one data_polling message for it now (source `api`), as beat does every interval; "
            "its result is kept under the poll. An active poll keeps its interval; a paused one stays paused."
        ),
        request=None,
        responses={
            200: SendResponseSerializer,
            **error_responses(DENIED, 404, STOPPED, *COMMON_ERRORS, *SQS_ERRORS),
        },
    )
    def post(self, request, schedule_id: int):
        sent = poll_schedules.poll_schedule_run_now(
            schedule=self.schedule(schedule_id), user=request.user, via=AuditVia.API, source="api"
        )
        return Response(
            {
                "message_id": sent.message_id,
                "queue": poll_schedules.POLL_QUEUE,
                "status": "sent",
                "timestamp": sent.body["timestamp"],
            }
        )
