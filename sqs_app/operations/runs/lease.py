"""A run's lease: one delivery of the run's task works on it at a time.

Celery may deliver the task twice (a worker killed mid-slice gives it back to
SQS; a resume queues another). A slice takes the lease with a token of its
own, renews it with every item, and releases it when it returns; a delivery
that finds the lease held does nothing but come back when it would end, for
its holder may have died.
"""

import uuid
from datetime import timedelta

from django.conf import settings
from django.db.models import DateTimeField, F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from ...models import OperatorRun, RunStatus


def lease_token(worker: str) -> str:
    """The holder's name on the lease: the worker's, then a part of its own (run_state shows the first)."""
    return f"{worker or 'worker'}/{uuid.uuid4().hex[:8]}"


def lease_take(run_id: int, *, token: str, now) -> bool:
    """Take the lease of a run that a worker may act on, if nobody holds it (or its holder's has ended)."""
    return bool(
        OperatorRun.objects.filter(pk=run_id, status__in=RunStatus.active())
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now))
        .update(
            status=RunStatus.RUNNING,
            lease_expires_at=now + timedelta(seconds=settings.OPERATOR_RUN_LEASE_SECONDS),
            worker=token,
            started_at=Coalesce(F("started_at"), Value(now, output_field=DateTimeField())),
        )
    )


def lease_renew(run: OperatorRun, *, token: str) -> bool:
    """Renew the lease; False when the run was cancelled or another delivery took it over."""
    return bool(
        OperatorRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING, worker=token).update(
            lease_expires_at=timezone.now() + timedelta(seconds=settings.OPERATOR_RUN_LEASE_SECONDS)
        )
    )


def lease_release(run_id: int, *, token: str) -> None:
    """Let the next slice (or another delivery) take the run at once, rather than when the lease ends."""
    OperatorRun.objects.filter(pk=run_id, worker=token).update(lease_expires_at=None)


def lease_holder_ends_in(run_id: int) -> float | None:
    """Another delivery holds the run: come back when its lease would end (it may have died)."""
    run = OperatorRun.objects.filter(pk=run_id, status__in=RunStatus.active()).first()
    if run is None:
        return None  # finished, cancelled, still a draft, or gone
    if run.lease_expires_at is None:
        return 1.0
    return max(1.0, (run.lease_expires_at - timezone.now()).total_seconds() + 1)
