"""The /sqs REST contract. Views parse input, call one service, render output.

Errors are raised, never rendered here: sqs_app.errors turns them into the
envelope.
"""

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import errors, health, operations, permissions, selectors, services
from ..errors import validation_details
from ..logging import log_message_sent
from ..models import AuditVia
from ..permissions import Action
from ..queues import LOGICAL_QUEUES
from ..schemas import validated
from . import serializers as s
from .permissions import is_staff, requires


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """OpenAPI entries for error responses, all in the one envelope."""
    return {code: OpenApiResponse(s.ErrorEnvelopeSerializer, description="Error envelope") for code in codes}


COMMON_ERRORS = (401, 429, 500)
# The logical queue named in the URL; any other name is QUEUE_NOT_FOUND (404).
QUEUE_PARAMETER = OpenApiParameter(
    "queue_name", str, OpenApiParameter.PATH, enum=list(LOGICAL_QUEUES), description="A logical queue."
)
# Refused for want of a permission (PERMISSION_DENIED).
DENIED = 403
SQS_ERRORS = (502, 503)


def parse_query(serializer_class, request) -> dict:
    """Validated query parameters; a bad one is a 400 naming it, never a silent clamp."""
    try:
        return validated(serializer_class, request.query_params)
    except ValidationError as exc:
        raise errors.InvalidParameter(
            "A query parameter is invalid.", details=validation_details(exc.detail)
        ) from exc


def parse_body(serializer_class, request) -> dict:
    """The validated body; a bad one raises DRF's ValidationError (VALIDATION_ERROR, with each field)."""
    return validated(serializer_class, request.data)


class QueueListView(APIView):
    @extend_schema(
        summary="List the queues",
        responses={200: s.QueueListResponseSerializer, **error_responses(*COMMON_ERRORS)},
    )
    def get(self, request):
        return Response({"available_queues": list(LOGICAL_QUEUES), "region": settings.AWS_REGION})


class SendView(APIView):
    permission_classes = requires(Action.SEND)

    @extend_schema(
        summary="Send a message",
        request=s.SendRequestSerializer,
        responses={
            200: s.SendResponseSerializer,
            **error_responses(400, DENIED, 404, 413, 415, 422, *COMMON_ERRORS, *SQS_ERRORS),
        },
    )
    def post(self, request):
        data = parse_body(s.SendRequestSerializer, request)
        permissions.authorize(request.user, Action.SEND, queue=data["queue_name"])
        sent = services.message_send(
            queue=data["queue_name"],
            message=data["message"],
            attributes=data["attributes"],
            sent_by=request.user,
        )
        log_message_sent(message_id=sent.message_id, body=sent.body, queue=data["queue_name"], via="api")
        return Response(
            {
                "message_id": sent.message_id,
                "queue": data["queue_name"],
                "status": "sent",
                "timestamp": sent.body["timestamp"],
            }
        )


class SendBatchView(APIView):
    permission_classes = requires(Action.SEND)

    @extend_schema(
        summary="Send up to ten messages in one SQS call",
        request=s.SendBatchRequestSerializer,
        responses={
            200: s.SendBatchResponseSerializer,
            **error_responses(400, DENIED, 404, 413, 415, 422, *COMMON_ERRORS, *SQS_ERRORS),
        },
    )
    def post(self, request):
        data = parse_body(s.SendBatchRequestSerializer, request)
        permissions.authorize(request.user, Action.SEND, queue=data["queue_name"])
        queue = services.queue_require(data["queue_name"])
        batch = [
            services.outgoing_message(
                queue=queue, message=entry["message"], attributes=entry["attributes"], source="api"
            )
            for entry in data["messages"]
        ]
        services.message_send_batch(queue=queue, batch=batch, sent_by=request.user)
        for outgoing in batch:
            if outgoing.message_id and not outgoing.error:
                log_message_sent(message_id=outgoing.message_id, body=outgoing.body, queue=queue, via="api")
        results = [
            {
                "index": index,
                "status": "failed" if m.error else "sent",
                "id": m.body["id"],
                "message_id": m.message_id,
                "error": {"code": m.error.error_code, "message": m.error.message} if m.error else None,
            }
            for index, m in enumerate(batch)
        ]
        failed = sum(1 for r in results if r["error"])
        return Response(
            {"queue": queue, "successful": len(results) - failed, "failed": failed, "results": results}
        )


class ReceiveView(APIView):
    permission_classes = requires(Action.RECEIVE)

    @extend_schema(
        summary="Receive messages",
        parameters=[QUEUE_PARAMETER, s.ReceiveQuerySerializer],
        responses={
            200: s.ReceiveResponseSerializer,
            **error_responses(400, DENIED, 404, *COMMON_ERRORS, *SQS_ERRORS),
        },
    )
    def get(self, request, queue_name: str):
        params = parse_query(s.ReceiveQuerySerializer, request)
        delivered = services.messages_receive(
            queue=queue_name,
            max_messages=params["max_messages"],
            wait_time_seconds=params["wait_time_seconds"],
            visibility_timeout=params.get("visibility_timeout"),
            received_by=request.user,
        )
        messages = [
            {
                "message_id": m.message_id,
                "body": m.body,
                "attributes": m.attributes,
                "receipt_handle": m.receipt_handle,
            }
            for m in delivered
        ]
        return Response({"queue": queue_name, "message_count": len(messages), "messages": messages})


class DeleteView(APIView):
    permission_classes = requires(Action.RECEIVE)

    @extend_schema(
        summary="Delete a received message by its receipt handle",
        parameters=[QUEUE_PARAMETER, s.DeleteQuerySerializer],
        responses={
            200: s.DeleteResponseSerializer,
            **error_responses(400, DENIED, 404, *COMMON_ERRORS, *SQS_ERRORS),
        },
    )
    def delete(self, request, queue_name: str):
        params = parse_query(s.DeleteQuerySerializer, request)
        services.message_delete(
            queue=queue_name,
            receipt_handle=params["receipt_handle"],
            deleted_by=request.user,
            via=AuditVia.API,
        )
        return Response({"status": "deleted", "queue": queue_name})


class TestMessageView(APIView):
    permission_classes = requires(Action.SEND)

    @extend_schema(
        summary="Send a test message to the default queue",
        request=None,
        responses={
            200: s.TestMessageResponseSerializer,
            **error_responses(DENIED, *COMMON_ERRORS, *SQS_ERRORS),
        },
    )
    def post(self, request):
        permissions.authorize(request.user, Action.SEND, queue="default")
        test_message, sent = services.test_message_send(sent_by=request.user)
        log_message_sent(message_id=sent.message_id, body=sent.body, queue="default", via="api")
        return Response(
            {
                "status": "success",
                "test_message": test_message,
                "result": {"message_id": sent.message_id, "queue": "default", "status": "sent"},
            }
        )


class RedriveView(APIView):
    permission_classes = requires(Action.REDRIVE)

    @extend_schema(
        summary="Replay dead-lettered messages onto their queue",
        parameters=[QUEUE_PARAMETER],
        request=s.RedriveRequestSerializer,
        responses={
            200: s.RedriveResponseSerializer,
            **error_responses(400, DENIED, 404, 415, 422, *COMMON_ERRORS, *SQS_ERRORS),
        },
    )
    def post(self, request, queue_name: str):
        data = parse_body(s.RedriveRequestSerializer, request)
        ids = data.get("message_ids")
        services.queue_require(queue_name)
        report = operations.dlq_redrive_run(
            queue=queue_name,
            limit=data["max_messages"],
            only_ids=set(ids) if ids else None,
            replayed_by=request.user,
            via=AuditVia.API,
        )
        if report.first_error is not None and not report.replayed:
            # Nothing moved: the error itself, in the envelope. (What did move is
            # gone from the DLQ, so a client retrying after a partial failure
            # redrives only the rest.)
            raise report.first_error
        messages = [
            {"dlq_message_id": r["dlq_message_id"], "message_id": r["message_id"]} for r in report.replayed
        ]
        return Response({"queue": queue_name, "replayed": len(messages), "messages": messages})


class MessagePagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class MessageListView(APIView):
    @extend_schema(
        summary="Message history",
        operation_id="sqs_messages_list",
        parameters=[s.MessageListQuerySerializer],
        responses={200: s.MessagePageSerializer, **error_responses(400, 404, *COMMON_ERRORS)},
    )
    def get(self, request):
        params = parse_query(s.MessageListQuerySerializer, request)
        messages = selectors.message_list(
            queue=params.get("queue"),
            status=params.get("status"),
            task_type=params.get("task_type"),
            correlation_id=params.get("correlation_id"),
            created_after=params.get("created_after"),
            created_before=params.get("created_before"),
            visible_to=request.user,
        )
        paginator = MessagePagination()
        page = paginator.paginate_queryset(messages, request, view=self)
        return paginator.get_paginated_response(s.MessageRecordSerializer(page, many=True).data)


class MessageDetailView(APIView):
    @extend_schema(
        summary="One message with its event timeline",
        responses={200: s.MessageDetailSerializer, **error_responses(404, *COMMON_ERRORS)},
    )
    def get(self, request, message_id: str):
        message = selectors.message_get(message_id=message_id, visible_to=request.user)
        task_result = selectors.message_task_result(message=message)
        return Response(s.MessageDetailSerializer(message, context={"task_result": task_result}).data)


class LivenessView(APIView):
    """The process answers: for a liveness probe, which must not restart pods when SQS is down."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    @extend_schema(summary="Liveness of this process", responses={200: s.LivenessResponseSerializer})
    def get(self, request):
        return Response({"status": "ok"})


class ReadinessView(APIView):
    """Ready to serve: the database answers. SQS is left out on purpose (sqs_app.health)."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    @extend_schema(
        summary="Readiness of this process (the database only)",
        responses={200: s.HealthResponseSerializer, 503: s.HealthResponseSerializer},
    )
    def get(self, request):
        # Probes ask without credentials: the public answer (sqs_app.health), the text in the log.
        report = health.health_check(health.READINESS_CHECKS, detailed=False)
        code = status.HTTP_200_OK if report["status"] == "ok" else status.HTTP_503_SERVICE_UNAVAILABLE
        return Response(report, status=code)


class HealthView(APIView):
    """Anyone may ask; staff (by token or admin session) also get the details that name hosts."""

    permission_classes = [AllowAny]
    throttle_classes = []

    def perform_authentication(self, request):
        pass  # read in get(): a bad or expired token gets the public answer, never a 401

    @extend_schema(
        summary="Health of the database and SQS",
        responses={200: s.HealthResponseSerializer, 503: s.HealthResponseSerializer},
        parameters=[OpenApiParameter("X-Request-ID", location="header", required=False)],
    )
    def get(self, request):
        report = health.health_check(detailed=is_staff(request))
        code = status.HTTP_200_OK if report["status"] == "ok" else status.HTTP_503_SERVICE_UNAVAILABLE
        return Response(report, status=code)
