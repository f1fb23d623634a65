"""The trace page: everything known about one message, from its send to its side effect.

Celery's task state and Wipsie's outcome are shown side by side, because
they answer different questions: a task that recorded a permanent failure
and returned normally is SUCCESS to Celery, while the message failed.
"""

import json

from django.apps import apps
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse

from .. import selectors
from ..models import Message, MessageStatus
from ..permissions import Action
from . import guards

STATUS_LABELS = {
    MessageStatus.PROCESSING: "primary",
    MessageStatus.SUCCEEDED: "success",
    MessageStatus.RETRYING: "warning",
    MessageStatus.FAILED: "danger",
    MessageStatus.DEAD_LETTERED: "danger",
}

TIMESTAMPS = [
    ("Created", "created_at"),
    ("Sent", "sent_at"),
    ("Processing started", "processing_started_at"),
    ("Finished", "finished_at"),
    ("Next attempt", "next_attempt_at"),  # a retry waits on the message's own queue until then
    ("Claimed until", "lease_expires_at"),  # the worker's lease on the attempt in progress
    ("Last change", "updated_at"),
]

# What each side-effect key means, in the order an operator reads them.
SIDE_EFFECT_KEYS = [
    ("notification_type", "Channel"),
    ("recipient", "Recipient"),
    ("status_code", "HTTP status"),
    ("sns_message_id", "SNS message id"),
    ("template_id", "Template"),
    ("poll_result_id", "Poll result"),
    ("item_count", "Items"),
    ("record_count", "Records"),
]


def exact(moment) -> str:
    """A timestamp to the millisecond, with its zone (stored in UTC)."""
    if moment is None:
        return "-"
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d} {moment.tzname()}"


def pretty(value) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def trace_view(model_admin, request, object_id):
    guards.require_view(request, model_admin)
    message = (
        model_admin.get_queryset(request)
        .select_related("sent_by", "replay_of")
        .prefetch_related("events", "replays")
        .filter(pk=object_id)
        .first()
        if str(object_id).isdigit()
        else None
    )
    if message is None:
        raise Http404("No such message.")
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": Message._meta,
        "original": message,  # unfold's header: SQS messages > Messages > this one
        "title": f"Message {message.sqs_message_id or message.standard_id or message.pk}",
        "message": message,
        "status_type": STATUS_LABELS.get(message.status, ""),
        **trace_context(message),
        "can_replay": guards.can(request, Action.REPLAY, queue=message.queue),
        "replay_url": reverse("admin:sqs_app_message_replay", args=[message.pk]),
        "changelist_url": reverse("admin:sqs_app_message_changelist"),
    }
    return TemplateResponse(request, "admin/sqs_app/message/trace.html", context)


def trace_context(message: Message) -> dict:
    task_result = selectors.message_task_result(message=message)
    result = task_result.result if task_result is not None else None
    schedule = _poll_schedule(message)
    return {
        "body": pretty(message.body),
        "attributes": pretty(message.attributes) if message.attributes else "",
        "timestamps": [
            (label, exact(getattr(message, field)))
            for label, field in TIMESTAMPS
            if hasattr(message, field) and getattr(message, field) is not None
        ],
        "events": [
            {
                "kind": event.get_kind_display(),
                "kind_value": event.kind,
                "at": exact(event.at),
                "actor": event.actor or "-",
                "detail": json.dumps(event.detail, ensure_ascii=False) if event.detail else "",
                "error": (event.detail or {}).get("error", ""),
            }
            for event in message.events.all()
        ],
        "task_result": task_result,
        "task_result_pretty": pretty(result) if result is not None else "",
        "task_result_url": admin_url(task_result),
        "outcome_differs": _outcome_differs(message, task_result),
        "side_effect": _side_effect(message, result),
        "poll_results": [(result, admin_url(result)) for result in _poll_results(message)],
        "poll_schedule": schedule,
        "poll_schedule_url": admin_url(schedule),
        "poll_run": schedule is not None and schedule.origin_id != message.pk,
        "replay_of": message.replay_of,
        "replays": list(message.replays.all()),
        "correlated_url": reverse("admin:sqs_app_message_changelist") + f"?q={message.correlation_id}"
        if message.correlation_id
        else "",
    }


def admin_url(obj) -> str:
    """The admin page of any object, or "" when its model has none."""
    if obj is None:
        return ""
    try:
        return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return ""


def _outcome_differs(message: Message, task_result) -> bool:
    """Celery says SUCCESS, Wipsie recorded a failure: say so, do not let SUCCESS stand alone."""
    return (
        task_result is not None
        and task_result.status == "SUCCESS"
        and message.status in (MessageStatus.FAILED, MessageStatus.DEAD_LETTERED, MessageStatus.RETRYING)
    )


def _side_effect(message: Message, result) -> list[tuple[str, str]]:
    if not isinstance(result, dict):
        return []
    rows = [(label, str(result[key])) for key, label in SIDE_EFFECT_KEYS if result.get(key) is not None]
    if result.get("notification_type") == "webhook" and message.standard_id:
        # The webhook's X-Wipsie-Delivery header carries the StandardMessage id.
        rows.append(("Delivery id (X-Wipsie-Delivery)", str(message.standard_id)))
    return rows


def _poll_results(message: Message):
    results = getattr(message, "poll_results", None)
    if results is None:
        return []
    return results.order_by("-polled_at")[:20]


def _poll_schedule(message: Message):
    """The recurring poll this message started, or the one it is a run of (its body's `schedule_id`)."""
    try:
        return message.poll_schedule
    except (ObjectDoesNotExist, AttributeError):
        pass
    schedule_id = message.body.get("schedule_id") if isinstance(message.body, dict) else None
    if not isinstance(schedule_id, int) or isinstance(schedule_id, bool):
        return None
    PollSchedule = apps.get_model("tasks_app", "PollSchedule")  # the workers' app; sqs_app does not import it
    return PollSchedule.objects.select_related("periodic_task").filter(pk=schedule_id).first()
