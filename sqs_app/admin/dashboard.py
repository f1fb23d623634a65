"""The dashboard (the admin index, UNFOLD["DASHBOARD_CALLBACK"]).

Per queue: live depth from SQS (the short-timeout client, so a hung SQS is a
notice, not a stalled page) and what the history says happened in the last
hour and day; a chart of the last 24 hours. Every figure links to the
message list filtered to what it counts.
"""

import json
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from .. import selectors
from ..models import MessageStatus
from ..queues import LOGICAL_QUEUES
from . import queues
from .links import messages_url, oldest_url

WINDOWS = [("hour", timedelta(hours=1)), ("day", timedelta(days=1))]
FIGURES = [
    ("sent", "Sent"),
    (MessageStatus.SUCCEEDED, "Succeeded"),
    (MessageStatus.FAILED, "Failed"),
    ("retrying", "Retrying now"),
    (MessageStatus.DEAD_LETTERED, "Dead-lettered"),
]
# Chart.js options (they replace unfold's defaults): a legend, whole numbers from zero.
CHART_OPTIONS = {
    "aspectRatio": 3.5,
    "plugins": {
        "legend": {
            "display": True,
            "align": "end",
            "labels": {"usePointStyle": True, "pointStyle": "circle", "boxWidth": 6, "boxHeight": 6},
        },
        "tooltip": {"enabled": True, "mode": "index", "intersect": False},
    },
    "elements": {"point": {"radius": 0}, "line": {"borderWidth": 2, "tension": 0.2}},
    "scales": {"y": {"beginAtZero": True, "ticks": {"precision": 0}}, "x": {"grid": {"display": False}}},
}
DEPTHS = [("visible", "Visible"), ("in_flight", "In flight"), ("delayed", "Delayed"), ("dead", "DLQ")]


def dashboard_callback(request, context):
    """Adds the dashboard's figures to the index page's context (for users who may view messages)."""
    if not request.user.has_perm("sqs_app.view_message"):
        return context
    now = timezone.now()
    depth_rows, sqs_notice = queues.queue_rows(now=now)
    context.update(
        {
            "wipsie_dashboard": True,
            "sqs_notice": sqs_notice,
            "depth_columns": DEPTHS,
            "depth_rows": [_depth_row(row, now=now) for row in depth_rows],
            "figure_columns": FIGURES,
            "activity": _activity_windows(now),
            "chart": json.dumps(_chart(selectors.message_throughput(until=now))),
            "chart_options": json.dumps(CHART_OPTIONS),
            "generated_at": now,
            "refresh_seconds": _refresh_seconds(request),
        }
    )
    return context


def _refresh_seconds(request) -> int | None:
    """?refresh=N reloads the page every N seconds (5 at the least, so it cannot hammer SQS)."""
    try:
        return max(5, int(request.GET["refresh"]))
    except (KeyError, ValueError):
        return None


def _depth_row(row: dict, *, now) -> dict:
    name = row["name"]
    oldest = row.get("oldest_age_seconds")
    if name in LOGICAL_QUEUES:
        link = messages_url(queue__exact=name)
        dead_link = messages_url(
            queue__exact=name, status__in=f"{MessageStatus.FAILED},{MessageStatus.DEAD_LETTERED}"
        )
        oldest_link = oldest_url(name, age_seconds=oldest, now=now) if oldest is not None else ""
    else:
        # Wipsie's own task queue holds beat's runs of the recurring polls; it has no history rows.
        link = reverse("admin:tasks_app_pollschedule_changelist")
        dead_link = reverse("admin:sqs_app_message_queues")
        oldest_link = ""
    cells = [(row.get(key), dead_link if key == "dead" else link) for key, _ in DEPTHS]
    return {"name": name, "link": link, "cells": cells, "oldest": oldest, "oldest_link": oldest_link}


def _activity_windows(now) -> list[dict]:
    retrying = selectors.message_status_counts(status=MessageStatus.RETRYING)  # "now": once for both
    return [_activity(label, now - span, retrying) for label, span in WINDOWS]


def _activity(label: str, since, retrying: dict[str, int]) -> dict:
    """One window's figures per queue, each with the link to the messages it counts."""
    counts = selectors.message_activity(since=since)
    for queue, count in retrying.items():
        counts.setdefault(queue, {})["retrying"] = count
    stamp = since.isoformat(timespec="seconds")
    rows = []
    for queue in [*LOGICAL_QUEUES, *sorted(set(counts) - set(LOGICAL_QUEUES))]:
        figures = counts.get(queue, {})
        cells = []
        for figure, _ in FIGURES:
            if figure == "sent":
                link = messages_url(queue__exact=queue, created_at__gte=stamp)
            elif figure == "retrying":
                link = messages_url(queue__exact=queue, status__exact=MessageStatus.RETRYING)
            else:
                link = messages_url(queue__exact=queue, status__exact=figure, finished_at__gte=stamp)
            cells.append({"figure": figure, "value": figures.get(figure, 0), "link": link})
        rows.append({"queue": queue, "cells": cells})
    return {"label": label, "rows": rows}


def _chart(points: list[dict]) -> dict:
    """Chart.js data (unfold's line chart) from selectors.message_throughput."""
    return {
        "labels": [p["hour"].strftime("%H:00") for p in points],
        "datasets": [
            {"label": "Sent", "data": [p["sent"] for p in points], "borderColor": "#7c3aed"},
            {"label": "Succeeded", "data": [p["succeeded"] for p in points], "borderColor": "#16a34a"},
            {
                "label": "Failed or dead-lettered",
                "data": [p["failed"] for p in points],
                "borderColor": "#dc2626",
            },
        ],
    }
