"""What the worker does with a run: one slice at a time, under the run's lease.

tasks_app.tasks.operator_run calls `run_slice` and queues the next slice
itself; the package's docstring says what survives a worker killed mid-slice.
"""

import time

from django.utils import timezone

from ...models import OperatorRun, RunKind
from .dead_letter_slices import dead_letter_slice
from .end import run_end
from .lease import lease_holder_ends_in, lease_release, lease_take, lease_token
from .outcomes import SliceOutcome
from .replay_slice import replay_slice

SLICE_SECONDS = 45  # well under Celery's soft time limit (240 s)


def run_slice(*, run_id: int, worker: str = "") -> float | None:
    """Work on a run for at most SLICE_SECONDS. Returns when to go on (seconds), or None: nothing to do."""
    now = timezone.now()
    token = lease_token(worker)
    if not lease_take(run_id, token=token, now=now):
        return lease_holder_ends_in(run_id)
    run = OperatorRun.objects.select_related("created_by").get(pk=run_id)
    try:
        if run.resume_at and run.resume_at > now:
            outcome = SliceOutcome(again_in=(run.resume_at - now).total_seconds())
        elif run.kind == RunKind.REPLAY:
            outcome = replay_slice(run, token=token, deadline=time.monotonic() + SLICE_SECONDS)
        else:
            outcome = dead_letter_slice(run, token=token, deadline=time.monotonic() + SLICE_SECONDS)
    finally:
        lease_release(run_id, token=token)
    if outcome.status is not None:
        run_end(run, status=outcome.status, reason=outcome.reason)
        return None
    return outcome.again_in
