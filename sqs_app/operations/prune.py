"""Retention: history, poll results and operator runs older than HISTORY_RETENTION_DAYS, in batches."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .. import errors
from ..models import Message, OperatorRun, RunStatus
from .common import Progress, no_progress


@dataclass
class PruneReport:
    cutoff: datetime
    messages: int = 0
    poll_results: int = 0
    operator_runs: int = 0


def history_prune(
    *,
    older_than_days: int | None = None,
    batch_size: int = 1000,
    dry_run: bool = False,
    progress: Progress = no_progress,
) -> PruneReport:
    """Delete history rows (with their events), poll results and operator runs older than the retention.

    An operator run goes (with its items) once it ended before the cutoff, or
    when it was never confirmed and was drafted before it; a run a worker may
    still act on is kept whatever its age.

    In batches of `batch_size` rows, each in its own transaction, so that a
    large prune never holds long locks. Older than SQS's own retention (at most
    14 days) no message of these rows can still be on a queue.
    """
    from tasks_app.models import PollResult

    days = settings.HISTORY_RETENTION_DAYS if older_than_days is None else older_than_days
    if days < 1:
        raise errors.InvalidParameter("The retention must be at least one day.", details={"days": days})
    report = PruneReport(cutoff=timezone.now() - timedelta(days=days))
    old_messages = Message.objects.filter(created_at__lt=report.cutoff)
    old_results = PollResult.objects.filter(polled_at__lt=report.cutoff)
    old_runs = OperatorRun.objects.filter(
        Q(status__in=RunStatus.finished(), finished_at__lt=report.cutoff)
        | Q(status=RunStatus.DRAFT, created_at__lt=report.cutoff)
    )
    if dry_run:
        report.messages, report.poll_results = old_messages.count(), old_results.count()
        report.operator_runs = old_runs.count()
        return report
    for queryset, counter in (
        (old_results, "poll_results"),
        (old_runs, "operator_runs"),
        (old_messages, "messages"),
    ):
        while True:
            pks = list(queryset.order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not pks:
                break
            with transaction.atomic():
                queryset.model.objects.filter(pk__in=pks).delete()
            setattr(report, counter, getattr(report, counter) + len(pks))
            progress(len(pks))
    return report
