"""Operator runs: long operator actions, confirmed in the admin and done by a worker.

A replay of every message matching a filter, or the redrive of a whole DLQ at
a capped rate, can take minutes; no HTTP request is held for it.

1. **Draft.** The admin records the run (`run_draft_replay`, `run_draft_dead_letters`)
   with exactly what it will act on: a replay's history rows, one item each;
   the DLQ messages chosen; or, for a whole DLQ, its depth then as the bound.
   The confirmation page shows that count.
2. **Confirm.** `run_confirm` queues it and puts one task on Wipsie's own
   `celery` queue (tasks_app.tasks.operator_run).
3. **Slices.** The task calls `run_slice`: it takes the run's lease, works for
   at most SLICE_SECONDS, records every item's outcome as it happens, then
   queues the next slice (so a long run never meets Celery's time limits, and
   leaves the worker's slot to other tasks between slices) until it is done.

**A worker killed at any line.** Celery acknowledges the task only when a
slice returns (acks_late), so the task comes back to another worker. What it
finds is durable:

- each item's outcome is written in one transaction with the run's counters,
  so what is done is never done again;
- a replay's new message has a deterministic id, uuid5 of the run and the
  original. An item replayed and killed before its outcome was written is
  sent again with the same id, and message_send's duplicate-id rule makes that
  a no-op. (The one window left: killed after SQS accepted the send and before
  the history row was confirmed, with no worker having seen the message yet:
  then a second copy goes out, with the same id, and the worker's claim
  processes that id once.)
- a redrive records "started" before its send and "sent" after it, and deletes
  the DLQ copy last. Resumed, a "sent" item only has its copy deleted; a
  "started" one is sent again (same StandardMessage id: the claim processes it
  once). The DLQ copies the killed worker held stay hidden until their
  visibility ends, so the run waits until then (`resume_at`) before it looks
  for them again;
- two deliveries of the task never work on one run at once: a slice holds a
  lease (renewed with every item, with a token of its own); another delivery
  finding it held comes back when the lease would end.

Each run ends with one audit entry (done, stopped or cancelled), with its counts.

The modules, in the order a run meets them:

- `control`: what an operator does to a run: draft, confirm, resume, cancel,
  and handing it to a worker (`run_enqueue`); the rate's bounds
- `worker`: `run_slice`, one slice of work under the run's lease
- `lease`: taking, renewing and releasing the lease
- `outcomes`: what every slice shares: an item's outcome with the counters,
  the pacing carried from the last slice, how a slice ended
- `replay_slice`: a replay's slice (`replay_id_for`: the deterministic ids)
- `dead_letter_slices`: a redrive's or delete's slice, with `RunJournal`
- `end`: how a run ends, and its audit entry
- `state`: the sentence the admin shows about where a run is
"""

from .control import (
    KIND_ACTIONS,
    MAX_ITEMS,
    MAX_RATE,
    MIN_RATE,
    rate_check,
    run_cancel,
    run_confirm,
    run_draft_dead_letters,
    run_draft_replay,
    run_enqueue,
    run_resume,
)
from .dead_letter_slices import RunJournal
from .end import KIND_AUDIT
from .replay_slice import REPLAY_ID_NAMESPACE, replay_id_for
from .state import WORKER_WAIT_NOTICE_SECONDS, run_state
from .worker import SLICE_SECONDS, run_slice

__all__ = [
    "KIND_ACTIONS",
    "KIND_AUDIT",
    "MAX_ITEMS",
    "MAX_RATE",
    "MIN_RATE",
    "REPLAY_ID_NAMESPACE",
    "SLICE_SECONDS",
    "WORKER_WAIT_NOTICE_SECONDS",
    "RunJournal",
    "rate_check",
    "replay_id_for",
    "run_cancel",
    "run_confirm",
    "run_draft_dead_letters",
    "run_draft_replay",
    "run_enqueue",
    "run_resume",
    "run_slice",
    "run_state",
]
