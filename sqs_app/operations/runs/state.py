"""What the admin says about where a run is."""

from django.utils import timezone

from ...models import OperatorRun, RunStatus

# How long a queued run may wait before the admin says no worker has taken it.
WORKER_WAIT_NOTICE_SECONDS = 10


def run_state(run: OperatorRun) -> str:
    """One honest sentence about where the run is."""
    now = timezone.now()
    if run.status == RunStatus.DRAFT:
        return "Awaiting your confirmation: nothing has been done yet."
    if run.status == RunStatus.QUEUED and run.started_at is None:
        waited = (now - (run.confirmed_at or run.created_at)).total_seconds()
        if waited >= WORKER_WAIT_NOTICE_SECONDS:
            return (
                f"Waiting for a worker: no worker has taken this run in {int(waited)} s. Workers "
                "consume Wipsie's own queue, celery (make run starts one)."
            )
        return "Queued: waiting for a worker to take it."
    if run.status in RunStatus.active():
        if run.lease_expires_at is not None and run.lease_expires_at > now:
            # The lease's token is the worker's name and a part of the slice's own (lease.lease_token).
            return f"Running on {run.worker.rsplit('/', 1)[0]}."
        if run.resume_at and run.resume_at > now:
            return "Waiting for the DLQ copies a stopped worker left hidden to be visible again."
        last = run.progressed_at or run.started_at
        since = f"; last progress {int((now - last).total_seconds())} s ago" if last else ""
        return (
            f"No worker is working on it right now{since}. It goes on when a worker takes its task "
            "again; if none does, press Resume."
        )
    if run.status == RunStatus.STOPPED:
        return f"Stopped: {run.stopped_reason}. What was done is kept; Resume goes on from there."
    if run.status == RunStatus.CANCELLED:
        return "Cancelled. What was done before is kept."
    return "Done."
