"""Queues: live depths from SQS (bounded by a short timeout), and purge behind a confirmation page.

Redriving dead letters is on each queue's dead-letter page (dead_letters.py).
"""

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from .. import operations, selectors, sqs_client
from ..errors import WipsieError
from ..models import AuditVia, MessageStatus
from ..permissions import Action
from ..queues import LOGICAL_QUEUES, OPERATOR_QUEUES
from . import guards
from .links import messages_url, oldest_url


def queue_rows(*, now) -> tuple[list[dict], str | None]:
    """selectors.queue_overview() with the short-timeout client: (rows, notice when SQS did not answer)."""
    try:
        with sqs_client.quick_calls():
            return selectors.queue_overview(now=now), None
    except WipsieError as exc:
        return [], f"SQS did not answer ({exc.error_code}: {exc.message}); queue depths are not shown."


# The page fetches itself again this often (htmx, served by unfold): each refresh costs
# one round of SQS calls, like a scrape of /metrics.
REFRESH_SECONDS = 10


def queues_view(model_admin, request):
    guards.require_view(request, model_admin)
    now = timezone.now()
    rows, error = queue_rows(now=now)
    for row in rows:
        name = row["name"]
        row["can_view_dead"] = guards.can(request, Action.VIEW_ALL, queue=name)
        row["can_purge"] = guards.can(request, Action.PURGE, queue=name)
        if name in LOGICAL_QUEUES:
            row["retrying_link"] = messages_url(queue__exact=name, status__exact=MessageStatus.RETRYING)
            if row["oldest_age_seconds"] is not None:
                row["oldest_link"] = oldest_url(name, age_seconds=row["oldest_age_seconds"], now=now)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Queues",
        "rows": rows,
        "error": error,
        "generated_at": now,
        "refresh_seconds": REFRESH_SECONDS,
    }
    return TemplateResponse(request, "admin/sqs_app/queues.html", context)


class PurgeForm(forms.Form):
    confirm = forms.CharField(label="Type the queue's name to confirm", max_length=50)

    def __init__(self, *args, queue: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.queue = queue

    def clean_confirm(self):
        if self.cleaned_data["confirm"].strip() != self.queue:
            raise forms.ValidationError(f"Type {self.queue} to purge it; nothing was purged.")
        return self.cleaned_data["confirm"]


def purge_view(model_admin, request, queue_name: str):
    """A confirmation page naming the queue (or its DLQ) and its depth now; POST purges."""
    if queue_name not in OPERATOR_QUEUES:
        raise Http404("No such queue.")
    guards.require(request, Action.PURGE, queue=queue_name)
    dead_letters = request.GET.get("dlq") == "1"
    what = f"the {queue_name} dead-letter queue" if dead_letters else f"the {queue_name} queue"
    back = (
        reverse("admin:sqs_app_message_dead_letter_queue", args=[queue_name])
        if dead_letters
        else reverse("admin:sqs_app_message_queues")
    )
    form = PurgeForm(request.POST or None, queue=queue_name)
    if request.method == "POST" and form.is_valid():
        try:
            count = operations.queue_purge(
                queue=queue_name, dead_letters=dead_letters, via=AuditVia.ADMIN, user=request.user
            )
        except WipsieError as exc:
            form.add_error(None, f"{exc.error_code}: {exc.message}")
        else:
            model_admin.message_user(
                request,
                f"Purged {what}: about {count} message(s) (SQS finishes within 60 s).",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(back)
    depths, error = None, None
    try:
        with sqs_client.quick_calls():
            depths = sqs_client.queue_depths(queue_name, dead_letters=dead_letters)
    except WipsieError as exc:
        error = f"SQS did not answer ({exc.error_code}: {exc.message}); its depth is not known."
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Purge {what}",
        "queue": queue_name,
        "what": what,
        "dead_letters": dead_letters,
        "depths": depths,
        "total": sum(depths.values()) if depths else None,
        "error": error,
        "form": form,
        "back": back,
    }
    return TemplateResponse(request, "admin/sqs_app/purge.html", context)
