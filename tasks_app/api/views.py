"""Recurring polls: list them, stop one.

Everyone sees the polls their own messages started; operators (MANAGE_POLLS)
and those who may view every message (VIEW_ALL) see them all. Stopping one
takes MANAGE_POLLS.
"""

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from sqs_app import permissions
from sqs_app.api.permissions import requires
from sqs_app.api.views import COMMON_ERRORS, DENIED, error_responses
from sqs_app.permissions import Action

from .. import polling
from ..models import PollSchedule
from .serializers import PollScheduleSerializer


def polls_visible_to(user) -> QuerySet[PollSchedule]:
    schedules = PollSchedule.objects.select_related("origin", "periodic_task")
    if permissions.allowed(user, Action.MANAGE_POLLS) or permissions.allowed(user, Action.VIEW_ALL):
        return schedules
    return schedules.filter(origin__sent_by=user)


class PollListView(APIView):
    @extend_schema(
        summary="Recurring polls",
        responses={200: PollScheduleSerializer(many=True), **error_responses(404, *COMMON_ERRORS)},
    )
    def get(self, request):
        schedules = polls_visible_to(request.user)
        if request.query_params.get("active") in ("true", "false"):
            schedules = schedules.filter(periodic_task__enabled=request.query_params["active"] == "true")
        return Response(PollScheduleSerializer(schedules, many=True).data)


class PollStopView(APIView):
    permission_classes = requires(Action.MANAGE_POLLS)

    @extend_schema(
        summary="Stop a recurring poll",
        request=None,
        responses={200: PollScheduleSerializer, **error_responses(DENIED, 404, *COMMON_ERRORS)},
    )
    def post(self, request, schedule_id: int):
        schedule = polling.poll_schedule_stop(schedule=get_object_or_404(PollSchedule, pk=schedule_id))
        return Response(PollScheduleSerializer(schedule).data)
