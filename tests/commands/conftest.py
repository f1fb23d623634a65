"""Helpers for the operator command tests: run a command as manage.py would, read its exit code."""

import json
from dataclasses import dataclass
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from sqs_app.models import Message
from sqs_app.schemas import build_standard_message
from tests.helpers import notification, worker_failed


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self):
        return json.loads(self.out)


def run_command(name: str, *args, stdin: str | None = None, **options) -> Result:
    """call_command, with the exit code manage.py would give (a CommandError's returncode)."""
    out, err = StringIO(), StringIO()
    if stdin is not None:
        options["stdin"] = StringIO(stdin)
    try:
        call_command(name, *args, stdout=out, stderr=err, **options)
    except CommandError as exc:
        return Result(exc.returncode, out.getvalue(), str(exc))
    return Result(0, out.getvalue(), err.getvalue())


@pytest.fixture
def command():
    return run_command


def dead_lettered(subject: str, queue: str = "notifications") -> Message:
    """A notification that a worker took, failed permanently and put on the DLQ."""
    body = build_standard_message(message=notification(subject=subject), queue=queue, source="api")
    return worker_failed(
        queue=queue,
        raw_body=json.dumps(body),
        sqs_message_id=f"sqs-{subject}",
        error="HTTP 404 from the webhook",
    )
