"""Export the filtered message list as CSV or JSON, streamed.

The rows are the changelist's own queryset (same filters, same search),
read with .iterator() in chunks and written out as they come, so a hundred
thousand messages never sit in memory at once.
"""

import csv
import json

from django.core.exceptions import PermissionDenied
from django.http import Http404, StreamingHttpResponse
from django.utils import timezone

COLUMNS = [
    "id",
    "sqs_message_id",
    "standard_id",
    "queue",
    "task_type",
    "status",
    "priority",
    "source",
    "correlation_id",
    "sent_by",
    "attempts",
    "receive_count",
    "last_error",
    "created_at",
    "sent_at",
    "finished_at",
    "body",
]
CHUNK_SIZE = 2000


class _Echo:
    """csv.writer's file: hands each written line back instead of storing it."""

    def write(self, value: str) -> str:
        return value


def _row(message) -> dict:
    return {
        "id": message.pk,
        "sqs_message_id": message.sqs_message_id or "",
        "standard_id": str(message.standard_id or ""),
        "queue": message.queue,
        "task_type": message.task_type,
        "status": message.status,
        "priority": message.priority,
        "source": message.source,
        "correlation_id": message.correlation_id,
        "sent_by": message.sent_by.username if message.sent_by_id else "",
        "attempts": message.attempts,
        "receive_count": message.receive_count,
        "last_error": message.last_error,
        "created_at": message.created_at.isoformat(),
        "sent_at": message.sent_at.isoformat() if message.sent_at else "",
        "finished_at": message.finished_at.isoformat() if message.finished_at else "",
        "body": message.body,
    }


def csv_lines(queryset):
    writer = csv.writer(_Echo())
    yield writer.writerow(COLUMNS)
    for message in queryset.iterator(chunk_size=CHUNK_SIZE):
        row = _row(message)
        row["body"] = json.dumps(row["body"], ensure_ascii=False)
        yield writer.writerow([row[column] for column in COLUMNS])


def json_lines(queryset):
    """One JSON array, written element by element."""
    yield "[\n"
    first = True
    for message in queryset.iterator(chunk_size=CHUNK_SIZE):
        yield ("" if first else ",\n") + json.dumps(_row(message), ensure_ascii=False)
        first = False
    yield "\n]\n"


FORMATS = {"csv": ("text/csv", csv_lines), "json": ("application/json", json_lines)}


def export_view(model_admin, request, fmt: str):
    if not model_admin.has_view_permission(request):
        raise PermissionDenied("You may not view messages.")
    if fmt not in FORMATS:
        raise Http404("Export as csv or json.")
    changelist = model_admin.get_changelist_instance(request)
    queryset = changelist.get_queryset(request).select_related("sent_by")
    content_type, lines = FORMATS[fmt]
    response = StreamingHttpResponse(lines(queryset), content_type=f"{content_type}; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="wipsie-messages-{stamp}.{fmt}"'
    return response
