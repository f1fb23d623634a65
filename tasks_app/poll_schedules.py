"""Recurring polls: start, pause, resume, run now and stop a PollSchedule, and who sees which.

A recurring poll is a `PollSchedule` with a django-celery-beat `PeriodicTask`
beside it; beat (its DatabaseScheduler) runs `send_scheduled_poll` at that
interval, which sends one data_polling message through `message_send`.

Its state, as the API and the console show it:

- **active**: the periodic task is enabled; beat sends a poll every interval;
- **paused**: the periodic task is disabled, and resuming enables it again;
- **stopped**: `stopped_at` is set (POST /sqs/polls/{id}/stop, or "Stop" in
  the console). Stopping is final: a stopped poll cannot be resumed or run,
  and `send_scheduled_poll` sends nothing for it even if its periodic task
  were enabled again by hand. Its results stay; a new poll message starts a
  new schedule.

Every action here is an operator's: the door (API, admin) has checked
MANAGE_POLLS, passes who and through which door, and the action is written
to the audit log here, once, whatever the door.
"""

import json

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from sqs_app import permissions
from sqs_app.audit import audit_record
from sqs_app.errors import PollStopped, WipsieError
from sqs_app.logging import log_message_sent
from sqs_app.models import AuditAction, AuditVia
from sqs_app.permissions import Action
from sqs_app.services import OutgoingMessage, message_send

from .models import PollSchedule

POLL_QUEUE = "data_polling"


def poll_schedules_visible_to(user) -> QuerySet[PollSchedule]:
    """The polls `user` may see: those their own messages started; with MANAGE_POLLS or VIEW_ALL, all."""
    schedules = PollSchedule.objects.select_related("origin", "origin__sent_by", "periodic_task")
    if permissions.allowed(user, Action.MANAGE_POLLS) or permissions.allowed(user, Action.VIEW_ALL):
        return schedules
    return schedules.filter(origin__sent_by=user)


def poll_schedule_start(*, schedule: PollSchedule) -> PeriodicTask:
    """Give a schedule its django-celery-beat periodic task (enabled)."""
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=schedule.interval_seconds, period=IntervalSchedule.SECONDS
    )
    task = PeriodicTask.objects.create(
        name=f"Recurring poll {schedule.pk}: {schedule.source_url}"[:200],
        task="tasks_app.tasks.send_scheduled_poll",
        interval=interval,
        kwargs=json.dumps({"schedule_id": schedule.pk}),
        description=f"Polls {schedule.source_url} every {schedule.interval_seconds} s (Wipsie).",
    )
    PollSchedule.objects.filter(pk=schedule.pk).update(periodic_task=task)
    schedule.periodic_task = task
    return task


def scheduled_message(schedule: PollSchedule) -> dict:
    """The data_polling message that one run of a recurring poll sends."""
    last = schedule.last_poll_time.isoformat() if schedule.last_poll_time else None
    message = {
        "task_type": "data_polling",
        "message": f"Scheduled poll of {schedule.source_url}",
        "schedule_id": schedule.pk,
        "data": {"source_url": schedule.source_url, "filters": schedule.filters, "last_poll_time": last},
    }
    if schedule.correlation_id:
        message["correlation_id"] = schedule.correlation_id
    return message


def poll_schedule_pause(*, schedule: PollSchedule, user=None, via: AuditVia | str) -> PollSchedule:
    """Disable the poll's periodic task until it is resumed. Pausing a paused poll changes nothing."""
    return _set_enabled(schedule=schedule, enabled=False, user=user, via=via, action=AuditAction.POLL_PAUSE)


def poll_schedule_resume(*, schedule: PollSchedule, user=None, via: AuditVia | str) -> PollSchedule:
    """Enable the poll's periodic task again: the next run is one interval from now."""
    return _set_enabled(schedule=schedule, enabled=True, user=user, via=via, action=AuditAction.POLL_RESUME)


def poll_schedule_stop(*, schedule: PollSchedule, user=None, via: AuditVia | str) -> PollSchedule:
    """Stop a recurring poll for good: its periodic task is disabled and `stopped_at` set (once)."""
    with transaction.atomic():
        schedule = _locked(schedule)
        changed = schedule.stopped_at is None
        if changed:
            schedule.stopped_at = timezone.now()
            schedule.save(update_fields=["stopped_at"])
        task = schedule.periodic_task
        if task is not None and task.enabled:
            task.enabled = False
            task.save(update_fields=["enabled", "date_changed"])  # beat notices within seconds
    _audit(AuditAction.POLL_STOP, schedule=schedule, user=user, via=via, changed=changed)
    return schedule


def poll_schedule_run_now(
    *, schedule: PollSchedule, user=None, via: AuditVia | str, source: str
) -> OutgoingMessage:
    """Send one poll of this schedule now, as beat would, outside its interval (active or paused).

    The message is the one `send_scheduled_poll` sends, from `source`
    ("manual" from the console, "api" from the API) and sent by `user`; its
    result is recorded under the schedule like any scheduled run.
    """
    if schedule.stopped_at is not None:
        refused = PollStopped(details={"schedule_id": schedule.pk})
        _audit(AuditAction.POLL_RUN, schedule=schedule, user=user, via=via, succeeded=False, error=refused)
        raise refused
    try:
        sent = message_send(
            queue=POLL_QUEUE, source=source, sent_by=user, message=scheduled_message(schedule)
        )
    except WipsieError as exc:
        _audit(AuditAction.POLL_RUN, schedule=schedule, user=user, via=via, succeeded=False, error=exc)
        raise
    log_message_sent(message_id=sent.message_id, body=sent.body, queue=POLL_QUEUE, via=str(via))
    _audit(AuditAction.POLL_RUN, schedule=schedule, user=user, via=via, message_ids=[sent.message_id])
    return sent


def _set_enabled(*, schedule, enabled: bool, user, via, action) -> PollSchedule:
    with transaction.atomic():
        schedule = _locked(schedule)
        if schedule.stopped_at is not None:
            refused = PollStopped(details={"schedule_id": schedule.pk})
        else:
            refused = None
            task = schedule.periodic_task
            changed = task is not None and task.enabled != enabled
            if changed:
                task.enabled = enabled
                # As beat's own admin does: a resumed task counts its interval from
                # now (date_changed), instead of running at once to catch up.
                task.last_run_at = None
                task.save(update_fields=["enabled", "last_run_at", "date_changed"])
    if refused is not None:
        _audit(action, schedule=schedule, user=user, via=via, succeeded=False, error=refused)
        raise refused
    _audit(action, schedule=schedule, user=user, via=via, changed=changed)
    return schedule


def _locked(schedule: PollSchedule) -> PollSchedule:
    """The schedule and its periodic task, read again under a row lock (two operators may click at once)."""
    # `of`: the periodic task is an outer join (it may be missing), which PostgreSQL cannot lock.
    locked = PollSchedule.objects.select_for_update(of=("self",)).select_related("periodic_task")
    return locked.get(pk=schedule.pk)


def _audit(
    action: AuditAction,
    *,
    schedule: PollSchedule,
    user,
    via,
    changed: bool = True,
    succeeded: bool = True,
    error: WipsieError | None = None,
    message_ids: list[str] | None = None,
) -> None:
    detail = {"schedule_id": schedule.pk, "source_url": schedule.source_url}
    if not changed:
        detail["unchanged"] = True
    if error is not None:
        detail["error"] = error.error_code
    audit_record(
        action=action,
        via=via,
        user=user,
        queue=POLL_QUEUE,
        message_ids=message_ids,
        count=len(message_ids or []),
        succeeded=succeeded,
        detail=detail,
    )
