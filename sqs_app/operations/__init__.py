"""Operator actions on whole queues and on the history, for every door.

The management commands, the admin and the API's redrive call these. Each
returns a report of exactly what happened, so that a door can show it and
choose its exit code, and each writes its own audit entry (sqs_app.audit) for
the door its caller names with `via`. Sending goes through sqs_app.services
like every other send.

- `purge`: queue_purge
- `replay`: replay from the history, as new messages linked to their originals
- `peek`: a DLQ's messages, looked at without consuming them
- `dead_letters`: one paced, journaled walk over a DLQ that redrives or
  deletes its messages
- `runs/`: OperatorRun, the long ones done in the background by a worker, in
  slices, resumable after a kill (the package's docstring says how)
- `prune`: history_prune
- `common`: what they share: the queues an operator may name
  (operator_queue_require), progress callbacks
"""

from .common import Progress, operator_queue_require
from .dead_letters import RedriveReport, dlq_redrive_run
from .peek import Peek, dlq_peek
from .prune import PruneReport, history_prune
from .purge import queue_purge
from .replay import ReplayReport, message_replay, messages_replay, replay_candidates

__all__ = [
    "Peek",
    "Progress",
    "PruneReport",
    "RedriveReport",
    "ReplayReport",
    "dlq_peek",
    "dlq_redrive_run",
    "history_prune",
    "message_replay",
    "messages_replay",
    "operator_queue_require",
    "queue_purge",
    "replay_candidates",
]
