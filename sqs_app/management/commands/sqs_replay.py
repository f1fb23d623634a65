"""Replay messages from the history as new messages (new ids, source `manual`, linked by `replay_of`)."""

import argparse
import re
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from sqs_app import operations
from sqs_app.management.base import OperationFailed, OperatorCommand, UsageError, ranged_int
from sqs_app.models import AuditVia, MessageStatus
from sqs_app.queues import LOGICAL_QUEUES


class Command(OperatorCommand):
    help = (
        "Send recorded messages again: by id (SQS or StandardMessage id), or the newest --limit "
        "matching --queue / --status / --since. Optionally onto --to-queue."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("ids", nargs="*", metavar="MESSAGE_ID")
        parser.add_argument("--queue", choices=LOGICAL_QUEUES, help="Only messages of this queue.")
        parser.add_argument("--status", choices=MessageStatus.values, help="Only messages in this status.")
        parser.add_argument("--since", type=_since, help="Only messages since: ISO time, or 30m, 2h, 7d ago.")
        parser.add_argument("--limit", type=ranged_int(1, 10000), default=100, help="At most this many.")
        parser.add_argument("--to-queue", choices=LOGICAL_QUEUES, help="Replay onto this queue instead.")

    def run(self, *, ids, queue, status, since, limit, to_queue, **options):
        if ids and (queue or status or since):
            raise UsageError("Give message ids or a filter (--queue, --status, --since), not both.")
        if not ids and not (queue or status or since):
            raise UsageError("Give message ids, or a filter: --queue, --status and/or --since.")
        records = operations.replay_candidates(ids=ids, queue=queue, status=status, since=since, limit=limit)
        with self.progress(len(records), "Replaying") as advance:
            report = operations.messages_replay(
                records=records,
                to_queue=to_queue,
                replayed_by=self.operator_user(),
                actor=self.operator,
                via=AuditVia.COMMAND,
                progress=advance,
            )
        result = {"replayed": report.replayed, "skipped": report.skipped, "failed": report.failed}
        self.emit(result)
        if report.failed or report.skipped:
            raise OperationFailed(
                f"{len(report.skipped)} skipped and {len(report.failed)} failed of {len(records)}."
            )
        return None

    def emit(self, result):
        if result is not None:
            super().emit(result)

    def render(self, result):
        self.table(
            ["original", "new message id", "new id", "queue"],
            [[r["original"], r["message_id"], r["id"], r["queue"]] for r in result["replayed"]],
        )
        for item in result["skipped"]:
            self.line(f"skipped {item['original']}: {item['reason']}")
        for item in result["failed"]:
            self.line(f"failed {item['original']}: {item['error']}")
        self.line(f"Replayed {len(result['replayed'])} message(s).")


_AGO = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _since(value: str) -> datetime:
    match = _AGO.match(value)
    if match:
        return timezone.now() - timedelta(**{_UNITS[match[2]]: int(match[1])})
    parsed = parse_datetime(value)
    if parsed is None:
        raise argparse.ArgumentTypeError(f"not a time or a duration like 2h: {value!r}")
    return parsed if parsed.tzinfo else timezone.make_aware(parsed)
