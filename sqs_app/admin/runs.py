"""Operator runs in the admin: the confirmation page, then the progress page, of every bulk action.

A bulk action (replay from the message list, redrive or delete from a DLQ
page) makes a draft run (sqs_app.operations.runs) and leads here. The page
says exactly what the run will act on; Confirm queues it for a worker; from
then on the same page shows its progress (refreshed with htmx, which unfold
serves itself), and at the end its report: done, skipped with reasons, failed.
"""

import functools

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from unfold.admin import ModelAdmin
from unfold.decorators import display

from .. import services
from ..errors import WipsieError
from ..models import ItemOutcome, OperatorRun, RunKind, RunStatus
from ..operations import runs as operator_runs
from ..permissions import Action, allowed
from ..queues import LOGICAL_QUEUES
from . import guards
from .pages import page_path

DEFAULT_RATE = 5.0  # messages per second, offered for a redrive
REPORT_ROWS = 100  # items of each outcome listed on the page (the counts are always exact)
STATUS_LABELS = {
    RunStatus.DRAFT: "info",
    RunStatus.QUEUED: "info",
    RunStatus.RUNNING: "primary",
    RunStatus.DONE: "success",
    RunStatus.STOPPED: "warning",
    RunStatus.CANCELLED: "danger",
}


def run_url(run: OperatorRun) -> str:
    return reverse("admin:sqs_app_operatorrun_change", args=[run.pk])


def runs_visible_to(user):
    """Everyone sees the runs they started; with "view all messages", every run."""
    runs = OperatorRun.objects.select_related("created_by")
    return runs if allowed(user, Action.VIEW_ALL) else runs.filter(created_by=user)


def may_act_on(user, run: OperatorRun, *, queue: str | None = None) -> bool:
    """The run's own permission, on its queue (a replay with no target: on some queue)."""
    return allowed(user, operator_runs.KIND_ACTIONS[run.kind], queue=queue or run.queue or None)


class ConfirmForm(forms.Form):
    """What an operator may still choose when confirming: the replay's target queue, the rate."""

    to_queue = forms.ChoiceField(
        required=False, label="replay to queue", help_text="Empty: each message to its own queue."
    )
    rate = forms.FloatField(
        required=False,
        min_value=operator_runs.MIN_RATE,
        max_value=operator_runs.MAX_RATE,
        label="rate (messages per second)",
        help_text=f"At most this many per second ({operator_runs.MIN_RATE:g} to {operator_runs.MAX_RATE:g}).",
    )

    def __init__(self, *args, run: OperatorRun, user, **kwargs):
        super().__init__(*args, **kwargs)
        if run.kind == RunKind.REPLAY:
            queues = [q for q in LOGICAL_QUEUES if allowed(user, Action.REPLAY, queue=q)]
            self.fields["to_queue"].choices = [("", "each message's own queue"), *((q, q) for q in queues)]
            self.fields["rate"].help_text += " Empty: as fast as they go."
        else:
            del self.fields["to_queue"]
            if run.kind == RunKind.REDRIVE:
                self.fields["rate"].required = True
            else:
                del self.fields["rate"]


@admin.register(OperatorRun)
class OperatorRunAdmin(ModelAdmin):
    list_display = ["run_link", "kind", "status_badge", "queue", "counts", "actor", "created_at"]
    list_display_links = None
    list_filter = ["kind", "status"]
    list_per_page = 50
    show_full_result_count = False

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("sqs_app.view_message")

    def has_add_permission(self, request):
        return False  # runs start from the actions that make them

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the record of what an operator did is kept

    def get_queryset(self, request):
        return runs_visible_to(request.user)

    @display(description="run", ordering="pk")
    def run_link(self, obj):
        return format_html('<a href="{}">#{}</a>', run_url(obj), obj.pk)

    @display(description="status", ordering="status", label=STATUS_LABELS)
    def status_badge(self, obj):
        return obj.status

    @display(description="done / skipped / failed of")
    def counts(self, obj):
        return f"{obj.done} / {obj.skipped} / {obj.failed} of {obj.total}"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return run_view(self, request, object_id)

    def get_urls(self):
        custom = [
            page_path(
                self, "<path:object_id>/progress/", run_progress_view, name="sqs_app_operatorrun_progress"
            ),
            page_path(
                self, "<path:object_id>/confirm/", run_confirm_view, name="sqs_app_operatorrun_confirm"
            ),
            page_path(self, "<path:object_id>/cancel/", run_cancel_view, name="sqs_app_operatorrun_cancel"),
            page_path(self, "<path:object_id>/resume/", run_resume_view, name="sqs_app_operatorrun_resume"),
        ]
        return custom + super().get_urls()


def _visible_run(model_admin, request, object_id) -> OperatorRun:
    """The run, if the user may see it (their own, or every run with "view all messages"); else 404."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied("You may not view operator runs.")
    run = model_admin.get_queryset(request).filter(pk=object_id).first() if str(object_id).isdigit() else None
    if run is None:
        raise Http404("No such run.")
    return run


def run_view(model_admin, request, object_id, *, fragment: bool = False, form: ConfirmForm | None = None):
    """The run's page: what it acts on, then (once confirmed) its progress and its report."""
    run = _visible_run(model_admin, request, object_id)
    user = request.user
    if run.status == RunStatus.DRAFT and form is None:
        form = ConfirmForm(run=run, user=user, initial={"rate": run.parameters.get("rate")})
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"{run.get_kind_display()}: run #{run.pk}",
        "opts": OperatorRun._meta,
        "run": run,
        "what": describe(run),
        "state": operator_runs.run_state(run),
        "status_type": STATUS_LABELS.get(run.status, ""),
        "live": run.status in RunStatus.active(),
        "percent": int(100 * (run.done + run.skipped + run.failed) / run.total) if run.total else 100,
        "eta": _eta(run),
        "report": _report(run),
        "form": form,
        "can_confirm": run.status == RunStatus.DRAFT
        and run.created_by_id == user.pk
        and may_act_on(user, run),
        "can_cancel": run.status not in RunStatus.finished() and may_act_on(user, run),
        "can_resume": _resumable(run) and may_act_on(user, run),
        "progress_url": reverse("admin:sqs_app_operatorrun_progress", args=[run.pk]),
        "runs_url": reverse("admin:sqs_app_operatorrun_changelist"),
        "messages_url": reverse("admin:sqs_app_message_changelist"),
        "report_rows": REPORT_ROWS,
    }
    template = "admin/sqs_app/run_progress.html" if fragment else "admin/sqs_app/run.html"
    return TemplateResponse(request, template, context)


def describe(run: OperatorRun) -> str:
    """What the run acts on, in one sentence, with the exact count or bound."""
    rate = run.parameters.get("rate")
    paced = f" at most {rate:g} per second" if rate else ""
    if run.kind == RunKind.REPLAY:
        target = run.queue or "each message's own queue"
        selection = f" ({run.parameters['selection']})" if run.parameters.get("selection") else ""
        return f"Replay {run.total} message(s){selection} as new messages to {target}{paced}."
    verb = "Redrive" if run.kind == RunKind.REDRIVE else "Delete"
    where = f"to {run.queue}" if run.kind == RunKind.REDRIVE else f"from the {run.queue} DLQ"
    if run.parameters.get("chosen"):
        return f"{verb} the {run.total} chosen dead letter(s) of {run.queue} {where}{paced}."
    return (
        f"{verb} the dead letters of {run.queue} {where}{paced}: at most {run.total}, the DLQ's depth when "
        "the run was made (later ones are left for another run)."
    )


def _eta(run: OperatorRun) -> str:
    """The time left at the run's rate ("" when it has no rate or has ended)."""
    rate = run.parameters.get("rate")
    left = run.total - run.done - run.skipped - run.failed
    if not rate or left <= 0 or run.status in RunStatus.finished():
        return ""
    minutes, seconds = divmod(int(left / rate), 60)
    return f"about {f'{minutes} min ' if minutes else ''}{seconds} s at {rate:g} per second"


def _resumable(run: OperatorRun) -> bool:
    """Whether to offer Resume: run_resume's own rule (stopped, or no worker holds the lease), and a
    queued run only once it has waited as long as run_state's "Waiting for a worker" notice."""
    if run.status == RunStatus.STOPPED:
        return True
    lease_over = run.lease_expires_at is None or run.lease_expires_at <= timezone.now()
    waited = run.status == RunStatus.RUNNING or (
        run.confirmed_at is not None
        and (timezone.now() - run.confirmed_at).total_seconds() >= operator_runs.WORKER_WAIT_NOTICE_SECONDS
    )
    return run.status in RunStatus.active() and lease_over and waited


def _report(run: OperatorRun) -> dict:
    """The first REPORT_ROWS items of each outcome, failures first."""
    items = run.items.select_related("message")
    return {
        outcome: list(items.filter(outcome=outcome).order_by("position")[:REPORT_ROWS])
        for outcome in (ItemOutcome.FAILED, ItemOutcome.SKIPPED, ItemOutcome.DONE)
    }


def run_progress_view(model_admin, request, object_id):
    """The progress part of the run's page alone, which the page fetches again while the run is live."""
    return run_view(model_admin, request, object_id, fragment=True)


def run_action(act):
    """A button of the run's page, as a view: POST only, for a run the user may see and act on.

    `act(model_admin, request, run)` returns a response, or None to go back to the run's page.
    """

    @functools.wraps(act)
    def view(model_admin, request, object_id):
        run = _visible_run(model_admin, request, object_id)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        require_run_permission(request, run)
        response = act(model_admin, request, run)
        return response if response is not None else HttpResponseRedirect(run_url(run))

    return view


@run_action
def run_confirm_view(model_admin, request, run: OperatorRun):
    if run.created_by_id != request.user.pk:
        raise PermissionDenied("Only who made this run may confirm it.")
    form = ConfirmForm(request.POST, run=run, user=request.user)
    if not form.is_valid():
        return run_view(model_admin, request, run.pk, form=form)
    to_queue = form.cleaned_data.get("to_queue") or None
    if to_queue:
        services.queue_require(to_queue)
        guards.require(request, Action.REPLAY, queue=to_queue)
    _hand_to_worker(
        model_admin,
        request,
        lambda: operator_runs.run_confirm(run=run, rate=form.cleaned_data.get("rate"), to_queue=to_queue),
        not_queued="The run is confirmed but could not be handed to a worker (the queue did not accept its "
        "task). Press Resume to try again.",
    )
    return None


@run_action
def run_cancel_view(model_admin, request, run: OperatorRun):
    operator_runs.run_cancel(run=run)
    model_admin.message_user(request, f"Run #{run.pk} cancelled.", messages.WARNING)


@run_action
def run_resume_view(model_admin, request, run: OperatorRun):
    _hand_to_worker(
        model_admin,
        request,
        lambda: operator_runs.run_resume(run=run),
        not_queued="The run could not be handed to a worker; try again.",
    )


def _hand_to_worker(model_admin, request, hand_over, *, not_queued: str) -> None:
    """Confirm or resume. A refusal (say, the run is no longer a draft) or a task the broker did not
    take is said on the run's page; the run is kept either way, and Resume tries again."""
    try:
        queued = hand_over()
    except WipsieError as exc:
        model_admin.message_user(request, f"{exc.error_code}: {exc.message}", messages.ERROR)
        return
    if not queued:
        model_admin.message_user(request, not_queued, messages.ERROR)


def require_run_permission(request, run: OperatorRun) -> None:
    """403 unless the user holds the run's own permission on its queue."""
    if not may_act_on(request.user, run):
        raise PermissionDenied(f"Not permitted: {operator_runs.KIND_ACTIONS[run.kind].value}")
