"""What every operator command shares: --json, --operator, tables, progress, exit codes, audit.

Exit codes: 0 success, 1 the operation failed (SQS down, a message not
found, part of the work refused), 2 bad usage (argparse's own errors, a value
out of range, an unknown queue, bad JSON). Every failure is one line on
stderr, never a traceback: Django prints a CommandError as one line and exits
with its `returncode`, and call_command (the tests) raises it.
"""

import argparse
import getpass
import json
import os
import shutil
import sys
from contextlib import contextmanager

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from sqs_app import errors
from sqs_app.audit import audit_record
from sqs_app.models import AuditVia

OK, FAILED, USAGE = 0, 1, 2

# Errors that mean the operator asked for something that cannot be: bad usage.
_USAGE_ERRORS = (errors.QueueNotFound, errors.ValidationFailed, errors.InvalidParameter)


class UsageError(CommandError):
    def __init__(self, message: str):
        super().__init__(message, returncode=USAGE)


class OperationFailed(CommandError):
    def __init__(self, message: str):
        super().__init__(message, returncode=FAILED)


class _Parser(CommandParser):
    """argparse errors exit 2 from the command line (argparse's own code) and from call_command."""

    def error(self, message):
        if self.called_from_command_line:
            super().error(message)
        raise UsageError(f"Error: {message}")


def positive_int(value: str) -> int:
    number = _int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def non_negative_int(value: str) -> int:
    number = _int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {number}")
    return number


def positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {value}")
    return number


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None


def ranged_int(low: int, high: int):
    def parse(value: str) -> int:
        number = _int(value)
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, not {number}")
        return number

    parse.__name__ = f"int {low}-{high}"
    return parse


class OperatorCommand(BaseCommand):
    """Base of the sqs_* and history_prune commands. Subclasses implement `run()`.

    `run(**options)` returns the result (a dict or a list of dicts, printed as
    JSON with --json, else by `render()`), and raises WipsieError or
    CommandError on failure.
    """

    requires_system_checks = []
    # The audit action a failed run is recorded under (None: nothing to record).
    audit_action = None

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # BaseCommand builds a CommandParser itself and takes no parser class;
        # _Parser only changes error(), so swapping the class is safe.
        parser.__class__ = _Parser
        return parser

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")
        parser.add_argument(
            "--operator",
            default=None,
            help="Who is acting, for the audit log and the history (default: the OS user).",
        )

    def handle(self, *args, **options):
        self.as_json = options["json"]
        self.operator = options["operator"] or _os_user()
        self.console = Console(file=self.stdout, width=_table_width(self.stdout), highlight=False)
        try:
            result = self.run(**options)
        except errors.WipsieError as exc:
            code = USAGE if isinstance(exc, _USAGE_ERRORS) else FAILED
            if code == FAILED and self.audit_action:
                self.audit(
                    action=self.audit_action,
                    queue=options.get("queue") or "",
                    count=0,
                    succeeded=False,
                    detail={"error": exc.error_code},
                )
            raise CommandError(_one_line(exc), returncode=code) from exc
        self.emit(result)
        return None

    def run(self, **options):
        raise NotImplementedError

    # --- Output ---------------------------------------------------------------------------

    def emit(self, result) -> None:
        if self.as_json:
            self.stdout.write(json.dumps(result, default=str, indent=2))
        else:
            self.render(result)

    def render(self, result) -> None:
        rows = result if isinstance(result, list) else [result]
        if rows:
            self.table(list(rows[0]), [list(row.values()) for row in rows])

    def table(self, columns: list[str], rows: list[list], title: str | None = None) -> None:
        table = Table(*columns, title=title, box=None, pad_edge=False, header_style="bold")
        for row in rows:
            table.add_row(*("-" if value is None else str(value) for value in row))
        self.console.print(table)

    def line(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    @contextmanager
    def progress(self, total: int | None, what: str):
        """A progress bar on stderr while `total` items are worked through (only on a terminal)."""
        console = Console(file=sys.stderr)
        bar = Progress(
            TextColumn(what),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal or self.as_json,
        )
        with bar:
            task = bar.add_task(what, total=total)
            yield lambda done: bar.advance(task, done)

    # --- Who acts, and the audit log --------------------------------------------------------

    def operator_user(self):
        """The Django user named like the operator, if there is one (history's sent_by)."""
        return get_user_model().objects.filter(username=self.operator, is_active=True).first()

    def audit(self, **fields) -> None:
        audit_record(via=AuditVia.COMMAND, actor=self.operator, user=self.operator_user(), **fields)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        return f"uid-{os.getuid()}"


def _one_line(exc: errors.WipsieError) -> str:
    text = f"{exc.error_code}: {exc.message}"
    details = {k: v for k, v in exc.details.items() if k != "fields"}
    fields = exc.details.get("fields")
    if fields:
        text += " " + "; ".join(f"{path}: {' '.join(messages)}" for path, messages in fields.items())
    if details:
        text += " " + json.dumps(details, default=str)
    return text.replace("\n", " ")


def _table_width(stream) -> int:
    """The terminal's width on a terminal; otherwise wide enough that no row wraps.

    Piped into grep, awk or a file, a table wrapped at 80 columns (what a
    program without a terminal is told) would split one queue over two lines.
    """
    return shutil.get_terminal_size().columns if stream.isatty() else 1000
