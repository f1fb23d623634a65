"""The "Recurring polls" page: every poll, its timing and last result, and pause / resume / run now / stop.

Each row: the source URL, the interval, its state (active, paused, stopped),
the next run (beat's), the last run and its result, who started it, and
links to its results and its runs (the messages it sent). The buttons and
the bulk actions go through tasks_app.poll_schedules, exactly as the API's
POST /sqs/polls/{id}/pause|resume|run|stop, and need MANAGE_POLLS, checked
on the server for GET and POST alike (guards.require). A poll is started by
a data_polling message with `poll_interval`, never typed in: no Add, no edit
(its timing lives in beat's periodic task), no delete (Stop ends it and keeps
its results).
"""

import json
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.db.models import OuterRef, Q, Subquery
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from unfold.admin import ModelAdmin
from unfold.decorators import display

from sqs_app.admin import guards
from sqs_app.admin.links import change_link
from sqs_app.admin.trace import exact
from sqs_app.errors import PollStopped, WipsieError
from sqs_app.models import AuditVia
from sqs_app.permissions import Action
from tasks_app import poll_schedules
from tasks_app.models import PollResult, PollSchedule

STATE_LABELS = {
    PollSchedule.ACTIVE: "success",
    PollSchedule.PAUSED: "warning",
    PollSchedule.STOPPED: "danger",
}
# The per-poll actions that change a poll's state, by URL name: (service, what was done).
SERVICES = {
    "pause": (poll_schedules.poll_schedule_pause, "paused"),
    "resume": (poll_schedules.poll_schedule_resume, "resumed"),
    "stop": (poll_schedules.poll_schedule_stop, "stopped"),
}


def relative(moment, *, now=None) -> str:
    """`moment` from now, in one short unit: "in 42s", "5m ago", "-" for none."""
    if moment is None:
        return "-"
    seconds = int((moment - (now or timezone.now())).total_seconds())
    span = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if span >= size:
            text = f"{span // size}{unit}"
            break
    else:
        text = f"{span}s"
    return f"in {text}" if seconds > 0 else f"{text} ago"


def every(seconds: int) -> str:
    """An interval in its largest whole unit: "30 s", "5 min", "2 h", "1 d"."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def when(moment) -> str:
    """A relative time with the exact one in its tooltip."""
    if moment is None:
        return "-"
    return format_html('<span title="{}">{}</span>', exact(moment), relative(moment))


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [(state, state) for state in STATE_LABELS]

    def queryset(self, request, queryset):
        running = Q(stopped_at__isnull=True)
        return {
            PollSchedule.ACTIVE: lambda: queryset.filter(running, periodic_task__enabled=True),
            PollSchedule.PAUSED: lambda: queryset.filter(running).exclude(periodic_task__enabled=True),
            PollSchedule.STOPPED: lambda: queryset.filter(stopped_at__isnull=False),
        }.get(self.value(), lambda: queryset)()


@admin.register(PollSchedule)
class PollScheduleAdmin(guards.RefuseUnpermittedActions, ModelAdmin):
    list_display = [
        "poll",
        "state_badge",
        "timing",
        "last_result",
        "created_by",
        "links",
    ]
    list_display_links = ["poll"]
    list_filter = [StateFilter]
    search_fields = ["source_url", "=correlation_id"]
    search_help_text = "Part of the source URL, or a correlation id."
    list_per_page = 50
    actions = ["pause_polls", "resume_polls", "run_polls_now", "stop_polls"]
    list_after_template = "admin/tasks_app/pollschedule/action_form.html"
    change_form_template = "admin/tasks_app/pollschedule/change_form.html"
    fields = readonly_fields = [
        "source_url",
        "filters_pretty",
        "interval",
        "state_badge",
        "next_run_exact",
        "last_result",
        "created_by",
        "origin_link",
        "links",
        "beat_task",
        "created_at",
        "stopped_at",
    ]

    # --- a poll is started by a message and ended by Stop -----------------------------------

    def has_add_permission(self, request):
        return False  # a recurring poll starts from a data_polling message with poll_interval

    def has_change_permission(self, request, obj=None):
        return False  # its timing is beat's periodic task; pause, resume and stop act on it

    def has_delete_permission(self, request, obj=None):
        return False  # Stop ends a poll and keeps its results; a deleted one would leave beat's task

    def has_manage_polls_permission(self, request):
        return guards.can(request, Action.MANAGE_POLLS)

    def get_queryset(self, request):
        latest = PollResult.objects.filter(schedule=OuterRef("pk")).order_by("-polled_at")
        # The latest result of each poll on the page: index-only lookups (tasks_app migration 0003).
        return poll_schedules.poll_schedules_visible_to(request.user).annotate(
            last_result_pk=Subquery(latest.values("pk")[:1]),
            last_result_status=Subquery(latest.values("status_code")[:1]),
            last_result_items=Subquery(latest.values("item_count")[:1]),
            last_result_at=Subquery(latest.values("polled_at")[:1]),
        )

    def get_list_display(self, request):
        if self.has_manage_polls_permission(request):
            return [*self.list_display, "buttons"]
        return self.list_display

    # --- columns ---------------------------------------------------------------------------

    @display(description="poll", ordering="pk")
    def poll(self, obj):
        url = obj.source_url
        return format_html('#{} <span class="wipsie-cell wipsie-url" title="{}">{}</span>', obj.pk, url, url)

    @display(description="every", ordering="interval_seconds")
    def interval(self, obj):
        return every(obj.interval_seconds)

    @display(description="state", label=STATE_LABELS)
    def state_badge(self, obj):
        return obj.state

    @display(description="every · next run", ordering="interval_seconds")
    def timing(self, obj):
        return format_html("{} · {}", every(obj.interval_seconds), when(obj.next_poll_at))

    @display(description="last run", ordering="last_poll_time")
    def last_result(self, obj):
        """When it last polled, and what its latest result says (a failed poll stores no result)."""
        if getattr(obj, "last_result_pk", None) is None:
            return when(obj.last_poll_time)
        url = reverse("admin:tasks_app_pollresult_change", args=[obj.last_result_pk])
        return format_html(
            '{} · <a class="poll-last-result" href="{}" title="{}">HTTP {}, {} item(s)</a>',
            when(obj.last_poll_time),
            url,
            exact(obj.last_result_at),
            obj.last_result_status,
            obj.last_result_items,
        )

    @display(description="owner")
    def created_by(self, obj):
        origin = obj.origin
        if origin is None:
            return "-"
        return origin.sent_by.username if origin.sent_by else (origin.source or "-")

    @display(description="see")
    def links(self, obj):
        results = reverse("admin:tasks_app_pollresult_changelist") + f"?schedule__id__exact={obj.pk}"
        parts = [format_html('<a class="poll-results" href="{}">results</a>', results)]
        if obj.correlation_id:
            # Every run carries the correlation id of the message that started the poll.
            runs = reverse("admin:sqs_app_message_changelist") + "?" + urlencode({"q": obj.correlation_id})
            parts.append(format_html('<a class="poll-runs" href="{}">runs</a>', runs))
        return format_html_join(" · ", "{}", ((part,) for part in parts))

    @display(description="actions")
    def buttons(self, obj):
        """POST buttons (in the form after the list, so they are not inside the changelist's form)."""
        if obj.state == PollSchedule.STOPPED:
            return "-"
        toggle = "resume" if obj.state == PollSchedule.PAUSED else "pause"
        return format_html(
            '<span class="wipsie-row-actions">{}{}<a class="wipsie-button small" data-poll-action="stop" '
            'href="{}">Stop</a></span>',
            _post_button(obj, toggle, toggle.capitalize()),
            _post_button(obj, "run", "Run now"),
            reverse("admin:tasks_app_pollschedule_stop", args=[obj.pk]),
        )

    # --- the detail page's fields ------------------------------------------------------------

    @display(description="filters")
    def filters_pretty(self, obj):
        return format_html('<pre class="wipsie-pre">{}</pre>', json.dumps(obj.filters, indent=2))

    @display(description="next run")
    def next_run_exact(self, obj):
        return exact(obj.next_poll_at)

    @display(description="started by message")
    def origin_link(self, obj):
        return change_link("admin:sqs_app_message_change", obj.origin_id, obj.origin)

    @display(description="beat's periodic task")
    def beat_task(self, obj):
        return change_link(
            "admin:django_celery_beat_periodictask_change", obj.periodic_task_id, obj.periodic_task
        )

    # --- pages -------------------------------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        custom = [
            path(
                f"<int:object_id>/{name}/",
                view(lambda request, object_id, name=name: self.poll_action_view(request, object_id, name)),
                name=f"tasks_app_pollschedule_{name}",
            )
            for name in (*SERVICES, "run")
        ]
        return custom + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_manage_polls": self.has_manage_polls_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def poll_action_view(self, request, object_id: int, name: str):
        """One poll's pause, resume, run or stop. GET of stop is its confirmation page."""
        guards.require(request, Action.MANAGE_POLLS)
        schedule = get_object_or_404(self.get_queryset(request), pk=object_id)
        if request.method != "POST":
            if name == "stop":
                return self._stop_confirmation(request, [schedule], action_url=request.path)
            return HttpResponseRedirect(reverse("admin:tasks_app_pollschedule_changelist"))
        self._act(request, [schedule], name)
        return HttpResponseRedirect(_next_url(request))

    # --- bulk actions (the same services) -----------------------------------------------------

    @admin.action(description="Pause the selected polls", permissions=["manage_polls"])
    def pause_polls(self, request, queryset):
        self._act(request, list(queryset), "pause")

    @admin.action(description="Resume the selected polls", permissions=["manage_polls"])
    def resume_polls(self, request, queryset):
        self._act(request, list(queryset), "resume")

    @admin.action(description="Run the selected polls now", permissions=["manage_polls"])
    def run_polls_now(self, request, queryset):
        self._act(request, list(queryset), "run")

    @admin.action(description="Stop the selected polls (final)", permissions=["manage_polls"])
    def stop_polls(self, request, queryset):
        if request.POST.get("confirmed") != "yes":
            return self._stop_confirmation(request, list(queryset), action_url=request.get_full_path())
        self._act(request, list(queryset), "stop")
        return None

    def _stop_confirmation(self, request, schedules, *, action_url: str):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Stop {len(schedules)} recurring poll(s)?",
            "schedules": schedules,
            "action_url": action_url,
            "changelist_url": reverse("admin:tasks_app_pollschedule_changelist"),
        }
        return TemplateResponse(request, "admin/tasks_app/pollschedule/stop_confirmation.html", context)

    def _act(self, request, schedules: list[PollSchedule], name: str) -> None:
        """Run one action on each poll and say exactly what happened: done, unchanged, refused, failed."""
        done, unchanged, stopped, failed = [], [], [], []
        for schedule in schedules:
            before = schedule.state
            try:
                if name == "run":
                    sent = poll_schedules.poll_schedule_run_now(
                        schedule=schedule, user=request.user, via=AuditVia.ADMIN, source="manual"
                    )
                    done.append(_message_link(sent.record, sent.message_id))
                    continue
                service, _ = SERVICES[name]
                after = service(schedule=schedule, user=request.user, via=AuditVia.ADMIN).state
            except PollStopped:
                stopped.append(f"#{schedule.pk}")
            except WipsieError as exc:
                failed.append(f"#{schedule.pk} ({exc.message})")
            else:
                (unchanged if after == before else done).append(f"#{schedule.pk}")
        self._report(request, name, done, unchanged, stopped, failed)

    def _report(self, request, name, done, unchanged, stopped, failed) -> None:
        if done and name == "run":
            links = format_html_join(", ", "{}", ((link,) for link in done))
            self.message_user(request, format_html("Sent {} poll(s) now: {}.", len(done), links))
        elif done:
            self.message_user(
                request, f"{SERVICES[name][1].capitalize()} {len(done)} poll(s): {', '.join(done)}."
            )
        if unchanged:
            self.message_user(
                request,
                f"Already {SERVICES[name][1]}, left as they were: {', '.join(unchanged)}.",
                messages.INFO,
            )
        if stopped:
            self.message_user(
                request, f"Left alone, stopped for good: {', '.join(stopped)}.", messages.WARNING
            )
        if failed:
            self.message_user(request, f"Failed: {'; '.join(failed)}.", messages.ERROR)


def _post_button(schedule: PollSchedule, name: str, label: str) -> str:
    return format_html(
        '<button type="submit" class="wipsie-button small" form="poll-action-form" formaction="{}" '
        'data-poll-action="{}">{}</button>',
        reverse(f"admin:tasks_app_pollschedule_{name}", args=[schedule.pk]),
        name,
        label,
    )


def _message_link(record, message_id) -> str:
    if record is None:
        return message_id or "-"
    url = reverse("admin:sqs_app_message_change", args=[record.pk])
    return format_html('<a href="{}">{}</a>', url, message_id or record.pk)


def _next_url(request) -> str:
    """Back where the button was (the list with its filters, or the poll's page)."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("admin:tasks_app_pollschedule_changelist")
