"""Dead letters: a page per DLQ (the four queues' and Wipsie's own `celery` queue's).

Each page peeks at its DLQ (operations.dlq_peek: the messages stay in the
DLQ, with their content) and shows every message's last error, receive count,
age and history row. Redrive (chosen ones or all, at a capped rate) and delete
(chosen ones) become an operator run, confirmed on its own page and done by a
worker (sqs_app/admin/runs.py); purge has its own confirmation (queues.py).
"""

from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from .. import sqs_client
from ..errors import WipsieError
from ..models import RunKind
from ..operations import dlq_peek
from ..operations import runs as operator_runs
from ..permissions import Action
from ..queues import OPERATOR_QUEUES
from . import guards, messages, runs

# The buttons of a DLQ page: (permission, run kind, whether it acts on the chosen messages only).
BUTTONS = {
    "redrive_selected": (Action.REDRIVE, RunKind.REDRIVE, True),
    "redrive_all": (Action.REDRIVE, RunKind.REDRIVE, False),
    "delete_selected": (Action.DELETE_DEAD_LETTERS, RunKind.DELETE_DEAD_LETTERS, True),
}


def require_view_dlq(request, model_admin, queue: str) -> None:
    """A DLQ holds message bodies: the user must be allowed to see every message of its queue."""
    guards.require_view(request, model_admin)
    if queue not in OPERATOR_QUEUES:
        raise Http404("No such queue.")
    guards.require(request, Action.VIEW_ALL, queue=queue)


def dead_letters_index(model_admin, request):
    guards.require_view(request, model_admin)
    rows, error = [], None
    try:
        with sqs_client.quick_calls():
            for queue in OPERATOR_QUEUES:
                depths = sqs_client.queue_depths(queue, dead_letters=True)
                rows.append(
                    {"queue": queue, **depths, "can_view": guards.can(request, Action.VIEW_ALL, queue=queue)}
                )
    except WipsieError as exc:
        error = f"SQS did not answer ({exc.error_code}: {exc.message}); the DLQ depths are not shown."
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Dead letters",
        "rows": rows,
        "error": error,
        "queues": [q for q in OPERATOR_QUEUES if guards.can(request, Action.VIEW_ALL, queue=q)],
        "recent_runs": runs.runs_visible_to(request.user).order_by("-created_at")[:10],
        "runs_url": reverse("admin:sqs_app_operatorrun_changelist"),
    }
    return TemplateResponse(request, "admin/sqs_app/dead_letters.html", context)


def dead_letter_queue_view(model_admin, request, queue: str):
    require_view_dlq(request, model_admin, queue)
    if request.method == "POST":
        return _draft_run(model_admin, request, queue)
    peek, error = None, None
    try:
        with sqs_client.quick_calls():
            peek = dlq_peek(queue=queue)
    except WipsieError as exc:
        error = f"SQS did not answer ({exc.error_code}: {exc.message}); the dead letters are not shown."
    can = {name: guards.can(request, permission, queue=queue) for name, (permission, *_) in BUTTONS.items()}
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Dead letters of {queue}",
        "queue": queue,
        "peek": peek,
        "error": error,
        "rows": [_letter_row(letter) for letter in peek.messages] if peek else [],
        "can": can,
        "can_act": any(can.values()),
        "can_purge": guards.can(request, Action.PURGE, queue=queue),
        "purge_url": reverse("admin:sqs_app_message_purge", args=[queue]) + "?dlq=1",
        "index_url": reverse("admin:sqs_app_message_dead_letters"),
    }
    return TemplateResponse(request, "admin/sqs_app/dead_letter_queue.html", context)


def _letter_row(letter) -> dict:
    record = letter.record
    return {
        "letter": letter,
        "summary": messages.summary_of(record) if record is not None else str(letter.body)[:120],
        "record_url": reverse("admin:sqs_app_message_change", args=[record.pk]) if record is not None else "",
        "age": messages.age(letter.dead_lettered_at),
    }


def _draft_run(model_admin, request, queue: str):
    """A button of the DLQ page: a draft run, confirmed on its page. 403 without the permission."""
    action = request.POST.get("action", "")
    if action not in BUTTONS:
        raise Http404("No such action.")
    permission, kind, chosen_only = BUTTONS[action]
    guards.require(request, permission, queue=queue)
    chosen = request.POST.getlist("ids") if chosen_only else None
    if chosen_only and not chosen:
        model_admin.message_user(request, "Choose at least one message first.", level="warning")
        return HttpResponseRedirect(reverse("admin:sqs_app_message_dead_letter_queue", args=[queue]))
    try:
        rate = runs.DEFAULT_RATE if kind == RunKind.REDRIVE else None
        run = operator_runs.run_draft_dead_letters(
            kind=kind, queue=queue, chosen=chosen, rate=rate, user=request.user
        )
    except WipsieError as exc:
        model_admin.message_user(request, f"{exc.error_code}: {exc.message}", level="error")
        return HttpResponseRedirect(reverse("admin:sqs_app_message_dead_letter_queue", args=[queue]))
    return HttpResponseRedirect(runs.run_url(run))
