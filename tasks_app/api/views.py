"""Recurring polls: list them, stop one."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from sqs_app.api.views import COMMON_ERRORS, error_responses

from .. import polling
from ..models import PollSchedule
from .serializers import PollScheduleSerializer

_ERRORS = error_responses(404, *COMMON_ERRORS)


class PollListView(APIView):
    @extend_schema(summary="Recurring polls", responses={200: PollScheduleSerializer(many=True), **_ERRORS})
    def get(self, request):
        schedules = PollSchedule.objects.select_related("origin", "periodic_task")
        if request.query_params.get("active") in ("true", "false"):
            schedules = schedules.filter(periodic_task__enabled=request.query_params["active"] == "true")
        return Response(PollScheduleSerializer(schedules, many=True).data)


class PollStopView(APIView):
    @extend_schema(
        summary="Stop a recurring poll", request=None, responses={200: PollScheduleSerializer, **_ERRORS}
    )
    def post(self, request, schedule_id: int):
        schedule = polling.poll_schedule_stop(schedule=get_object_or_404(PollSchedule, pk=schedule_id))
        return Response(PollScheduleSerializer(schedule).data)
