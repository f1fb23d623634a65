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
A message with `poll_interval` creates a `PollSchedule` and, beside it, a
django-celery-beat `PeriodicTask` on an `IntervalSchedule` of that many
seconds. Beat (its DatabaseScheduler: no schedule file) runs
`send_scheduled_poll` at that exact interval, which sends one data_polling
message (source "scheduler", carrying the schedule id) through the services.
Pausing, resuming, running now and stopping are in `tasks_app.poll_schedules`.
"""

import json
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import outbound
from .errors import PermanentTaskError
from .models import PollResult, PollSchedule
from .policy import outbound_policy
from .poll_schedules import poll_schedule_start
from .processing import record_matches, validate_where

RECORD_KEYS = ("data", "items", "results", "records")

logger = logging.getLogger(__name__)


def poll_source(*, message: dict, data: dict, record_pk: int | None) -> dict:
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
    schedule = _schedule_for(message=message, data=data, record_pk=record_pk, now=now)
    result = _store_result(
        record_pk=record_pk,
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


def _store_result(*, record_pk, schedule, url, status_code, duration_ms, records) -> PollResult:
    encoded = json.dumps(records)
    keep_whole = len(encoded.encode()) <= settings.POLL_RESULT_MAX_BYTES
    return PollResult.objects.create(
        message_id=record_pk,
        schedule=schedule,
        source_url=url,
        status_code=status_code,
        duration_ms=duration_ms,
        item_count=len(records),
        payload=records if keep_whole else None,
        excerpt="" if keep_whole else encoded[: settings.POLL_RESULT_MAX_BYTES],
        truncated=not keep_whole,
    )


def _schedule_for(*, message: dict, data: dict, record_pk: int | None, now) -> PollSchedule | None:
    """The schedule this poll belongs to: the one it came from, or a new one."""
    schedule_id = message.get("schedule_id")
    if schedule_id is not None:
        schedule = PollSchedule.objects.filter(pk=schedule_id).first()
        if schedule is not None:
            PollSchedule.objects.filter(pk=schedule.pk).update(last_poll_time=now)
        return schedule
    if not data.get("poll_interval"):
        return None
    with transaction.atomic():
        # One schedule per originating message, however often that message is delivered.
        schedule, created = PollSchedule.objects.select_for_update().get_or_create(
            origin_id=record_pk,
            defaults={
                "source_url": data["source_url"],
                "filters": data.get("filters") or {},
                "interval_seconds": data["poll_interval"],
                "correlation_id": str(message.get("correlation_id", ""))[:128],
                "last_poll_time": now,
            },
        )
        if created:
            poll_schedule_start(schedule=schedule)
    return schedule
