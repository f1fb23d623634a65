"""Queues: live depths from SQS (bounded by a short timeout), and redrive of dead letters."""

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from .. import selectors, services, sqs_client
from ..audit import audit_record
from ..errors import WipsieError
from ..models import AuditAction, AuditVia
from ..permissions import Action
from . import guards


def queue_rows() -> tuple[list[dict], str | None]:
    """selectors.queue_overview() with the short-timeout client: (rows, notice when SQS did not answer)."""
    try:
        with sqs_client.quick_calls():
            return selectors.queue_overview(), None
    except WipsieError as exc:
        return [], f"SQS did not answer ({exc.error_code}: {exc.message}); queue depths are not shown."


def queues_view(model_admin, request):
    guards.require_view(request, model_admin)
    rows, error = queue_rows()
    for row in rows:
        row["can_redrive"] = bool(row.get("dead")) and guards.can(request, Action.REDRIVE, queue=row["name"])
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Queues",
        "rows": rows,
        "error": error,
    }
    return TemplateResponse(request, "admin/sqs_app/queues.html", context)


def redrive_view(model_admin, request, queue_name: str):
    guards.require(request, Action.REDRIVE, queue=queue_name)
    if request.method != "POST":
        return HttpResponseRedirect(reverse("admin:sqs_app_message_queues"))
    try:
        replayed = services.dlq_redrive(queue=queue_name, replayed_by=request.user)
    except WipsieError as exc:
        audit_record(
            action=AuditAction.REDRIVE,
            via=AuditVia.ADMIN,
            user=request.user,
            queue=queue_name,
            succeeded=False,
            detail={"error": exc.error_code},
        )
        model_admin.message_user(request, f"{queue_name}: {exc.message}", messages.ERROR)
    else:
        audit_record(
            action=AuditAction.REDRIVE,
            via=AuditVia.ADMIN,
            user=request.user,
            queue=queue_name,
            message_ids=[r.message_id for r in replayed],
            count=len(replayed),
        )
        model_admin.message_user(request, f"Redrove {len(replayed)} message(s) from the {queue_name} DLQ.")
    return HttpResponseRedirect(reverse("admin:sqs_app_message_queues"))
