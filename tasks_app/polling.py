"""The data-polling family: fetch a URL, filter its JSON, keep the result, recur.

Filters
-------
`filters` is a condition on records, in the language of
`tasks_app.processing.record_matches`:

- `{"status": "active"}` keeps records whose `status` equals "active";
- `{"score": {"gte": 10, "lt": 100}}`: operators eq, ne, gt, gte, lt, lte,
  in, contains, exists (all must hold);
- `{"owner.team": "blue"}`: a dotted path reaches into nested objects.

The records of a response are: the response itself when it is a JSON array;
otherwise the array under the first of "data", "items", "results" or
"records" that holds one; otherwise the object itself, as a single record.
Without filters, every record is kept.

Recurring polls
---------------
A message with `poll_interval` creates a `PollSchedule`. Celery beat runs
`enqueue_due_polls` every few seconds, which sends a new data_polling message
(source "scheduler", carrying the schedule id) for each schedule that is due.
Stopping a schedule (admin, or POST /sqs/polls/{id}/stop) ends it.
"""

import json
import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from sqs_app.errors import WipsieError
from sqs_app.models import Message
from sqs_app.services import message_send

from . import outbound
from .errors import PermanentTaskError
from .models import PollResult, PollSchedule
from .policy import outbound_policy
from .processing import record_matches, validate_where

RECORD_KEYS = ("data", "items", "results", "records")

logger = logging.getLogger(__name__)


def poll_source(*, message: dict, data: dict, record: Message | None) -> dict:
    """Poll once; store the result; start a schedule when asked. Returns a summary."""
    filters = data.get("filters") or {}
    validate_where(filters, context="data.filters")
    response = outbound.fetch("GET", data["source_url"], policy=outbound_policy(), raise_for_status=True)
    try:
        payload = json.loads(response.content)
    except ValueError as exc:
        raise PermanentTaskError(
            f"{data['source_url']} did not answer with JSON (status {response.status_code})"
        ) from exc
    records = [r for r in records_of(payload) if not filters or record_matches(r, filters)]
    now = timezone.now()
    schedule = _schedule_for(message=message, data=data, record=record, now=now)
    result = _store_result(
        record=record,
        schedule=schedule,
        url=data["source_url"],
        status_code=response.status_code,
        duration_ms=response.elapsed_seconds * 1000,
        records=records,
    )
    return {
        "poll_result_id": result.pk,
        "status_code": result.status_code,
        "duration_ms": round(result.duration_ms, 1),
        "item_count": result.item_count,
        "last_poll_time": now.isoformat(),
        "schedule_id": schedule.pk if schedule else None,
    }


def records_of(payload: object) -> list[dict]:
    if isinstance(payload, list):
        return [item for item in payload if isinstance(item, dict)]
    if isinstance(payload, dict):
        for key in RECORD_KEYS:
            if isinstance(payload.get(key), list):
                return [item for item in payload[key] if isinstance(item, dict)]
        return [payload]
    return []


def _store_result(*, record, schedule, url, status_code, duration_ms, records) -> PollResult:
    encoded = json.dumps(records)
    keep_whole = len(encoded.encode()) <= settings.POLL_RESULT_MAX_BYTES
    return PollResult.objects.create(
        message=record,
        schedule=schedule,
        source_url=url,
        status_code=status_code,
        duration_ms=duration_ms,
        item_count=len(records),
        payload=records if keep_whole else None,
        excerpt="" if keep_whole else encoded[: settings.POLL_RESULT_MAX_BYTES],
        truncated=not keep_whole,
    )


def _schedule_for(*, message: dict, data: dict, record: Message | None, now) -> PollSchedule | None:
    """The schedule this poll belongs to: the one it came from, or a new one."""
    schedule_id = message.get("schedule_id")
    if schedule_id is not None:
        schedule = PollSchedule.objects.filter(pk=schedule_id).first()
        if schedule is not None:
            PollSchedule.objects.filter(pk=schedule.pk).update(last_poll_time=now)
        return schedule
    if not data.get("poll_interval"):
        return None
    schedule, _ = PollSchedule.objects.get_or_create(
        origin=record,
        defaults={
            "source_url": data["source_url"],
            "filters": data.get("filters") or {},
            "interval_seconds": data["poll_interval"],
            "correlation_id": str(message.get("correlation_id", ""))[:128],
            "next_poll_at": now + timedelta(seconds=data["poll_interval"]),
            "last_poll_time": now,
        },
    )
    return schedule


def enqueue_due_polls(*, now=None, limit: int = 100) -> int:
    """Send one data_polling message per due, active schedule. Returns how many were sent.

    Each schedule's next time is moved forward and committed *before* its
    message is sent, with the rows locked (SKIP LOCKED where the database has
    it): two beats, or a tick that overlaps the next, never enqueue the same
    poll twice. A send that fails skips one interval rather than doubling one.
    """
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            PollSchedule.objects.select_for_update(skip_locked=True)
            .filter(active=True, next_poll_at__lte=now)
            .order_by("next_poll_at")[:limit]
        )
        for schedule in due:
            schedule.next_poll_at = now + timedelta(seconds=schedule.interval_seconds)
            schedule.save(update_fields=["next_poll_at"])
    sent = 0
    for schedule in due:
        try:
            message_send(queue="data_polling", source="scheduler", message=_scheduled_message(schedule))
        except WipsieError:
            logger.exception("Could not enqueue the scheduled poll %s", schedule.pk)
        else:
            sent += 1
    return sent


def _scheduled_message(schedule: PollSchedule) -> dict:
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


def poll_schedule_stop(*, schedule: PollSchedule) -> PollSchedule:
    if schedule.active:
        schedule.active = False
        schedule.stopped_at = timezone.now()
        schedule.save(update_fields=["active", "stopped_at"])
    return schedule
