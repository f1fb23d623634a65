"""Every operator command: exit 2 on bad usage, 1 on a failed operation, one line and no traceback."""

import pytest

from sqs_app.models import AuditEntry
from tests.helpers import make_sqs_unreachable

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sqs_receive", "default", "--max", "0"), "argument --max: must be between 1 and 10, not 0"),
        (("sqs_receive", "default", "--max", "-5"), "argument --max: must be between 1 and 10, not -5"),
        (("sqs_receive", "default", "--wait", "21"), "argument --wait: must be between 0 and 20, not 21"),
        (("sqs_redrive", "notifications", "--max", "0"), "argument --limit/--max: must be at least 1, not 0"),
        (("sqs_redrive", "notifications", "--limit", "-5"), "argument --limit/--max: must be at least 1"),
        (("sqs_redrive", "notifications", "--rate", "0"), "argument --rate: must be more than 0, not 0"),
        (("sqs_send", "default", "--body", "{}", "--delay", "901"), "must be between 0 and 900, not 901"),
        (("sqs_replay", "--limit", "0", "--queue", "default"), "argument --limit: must be between 1"),
        (("history_prune", "--days", "0"), "argument --days: must be at least 1, not 0"),
        (("sqs_replay", "--queue", "nope"), "argument --queue: invalid choice: 'nope'"),
    ],
)
def test_a_bad_argument_exits_2_naming_it(command, sqs_untouched, args, message):
    result = command(*args)

    assert result.code == 2
    assert message in result.err
    assert "\n" not in result.err


@pytest.mark.parametrize(
    "args",
    [
        ("sqs_receive", "nope"),
        ("sqs_send", "nope", "--body", "{}"),
        ("sqs_delete", "nope", "handle"),
        ("sqs_purge", "nope", "--yes"),
        ("sqs_redrive", "nope"),
    ],
)
def test_an_unknown_queue_exits_2_with_one_line_naming_the_queues(command, sqs_untouched, args):
    result = command(*args)

    assert result.code == 2
    assert result.err.startswith("QUEUE_NOT_FOUND: The specified queue does not exist")
    assert '"queue_name": "nope"' in result.err
    assert "\n" not in result.err


def test_bad_json_exits_2_with_one_line(command, sqs_untouched):
    result = command("sqs_send", "default", "--body", "{not json")

    assert result.code == 2
    assert result.err.startswith("The message is not valid JSON: Expecting property name")
    assert "\n" not in result.err


@pytest.mark.parametrize(
    "args",
    [
        ("sqs_queues",),
        ("sqs_setup",),
        ("sqs_send", "default", "--body", '{"message": "hi"}'),
        ("sqs_receive", "default"),
        ("sqs_purge", "default", "--yes"),
        ("sqs_redrive", "notifications"),
        ("sqs_test_message",),
    ],
)
def test_sqs_down_exits_1_with_one_line(command, sqs, settings, args):
    make_sqs_unreachable(settings)

    result = command(*args)

    assert result.code == 1
    assert result.err.startswith("SQS_UNAVAILABLE: Amazon SQS could not be reached.")
    assert "\n" not in result.err


def test_a_failed_operation_is_audited_as_failed(command, sqs, settings):
    make_sqs_unreachable(settings)

    command("sqs_purge", "default", "--yes", "--operator", "carol")

    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.queue, entry.succeeded) == ("purge", "carol", "default", False)
    assert entry.detail == {"error": "SQS_UNAVAILABLE"}


def test_the_command_line_exits_with_the_code_and_prints_one_line(tmp_path):
    """Through manage.py itself: argparse's exit 2 and Django's one-line CommandError."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "wipsie_site.settings_test"}
    bad_usage = subprocess.run(
        [sys.executable, "manage.py", "sqs_receive", "default", "--max", "0"],
        capture_output=True,
        text=True,
        env=env,
    )
    unknown = subprocess.run(
        [sys.executable, "manage.py", "sqs_send", "nope", "--body", "{}"],
        capture_output=True,
        text=True,
        env=env,
    )

    assert bad_usage.returncode == 2
    assert "argument --max: must be between 1 and 10, not 0" in bad_usage.stderr
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines() == [unknown.stderr.strip()]
    assert "Traceback" not in unknown.stderr
    assert unknown.stderr.startswith("CommandError: QUEUE_NOT_FOUND")
