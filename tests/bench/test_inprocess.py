"""bench/inprocess.py runs a send through the WSGI handler and reports its CPU (here on moto and SQLite)."""

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_inprocess(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "bench/inprocess.py",
            "--emulator",
            "moto",
            "--requests",
            "20",
            "--database-url",
            f"sqlite:///{tmp_path / 'inprocess.sqlite3'}",
            *args,
        ],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "INPROCESS_PARTS": "1", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_it_reports_cpu_per_message_and_the_pieces(tmp_path):
    result = run_inprocess(tmp_path)

    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    summary = re.search(r"moto, POST /sqs/send, 20 requests in one thread: ([\d.]+) ms CPU", result.stdout)
    assert summary and float(summary.group(1)) > 0
    for piece in ("the body's validation", "boto3 send_message", "services.message_send"):
        assert re.search(rf"[\d.]+ ms CPU per call  {re.escape(piece)}", result.stdout), result.stdout


def test_the_floor_sends_and_records_each_message(tmp_path):
    # A request that did not answer 200 stops the run (bench/inprocess.py raises), so a pass
    # means all 70 calls (50 warm-up and 20 measured) sent and recorded their message.
    result = run_inprocess(tmp_path, "--path", "floor")

    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    summary = re.search(
        r"moto, the floor \(bench/floor.py\), 20 requests in one thread: ([\d.]+) ms CPU", result.stdout
    )
    assert summary and float(summary.group(1)) > 0
    recorded = sqlite3.connect(tmp_path / "inprocess.sqlite3").execute(
        "SELECT count(*), count(DISTINCT sqs_message_id) FROM sqs_app_message WHERE status = 'sent'"
    )
    assert recorded.fetchone() == (70, 70)


def test_without_takes_the_named_parts_out_of_the_request_path(tmp_path):
    result = run_inprocess(tmp_path, "--without", "browsable-api,throttle,browser-middleware")

    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    # The child says what its requests went through: the settings took effect there.
    assert "request path: 3 middleware, 0 throttles, 1 renderers" in result.stdout, result.stdout
    assert re.search(
        r"moto, POST /sqs/send without throttle, browser-middleware, browsable-api, 20 requests",
        result.stdout,
    ), result.stdout
    # 70 sends through the API (50 warm-up, 20 measured), 70 more by INPROCESS_PARTS's service calls.
    recorded = sqlite3.connect(tmp_path / "inprocess.sqlite3").execute(
        "SELECT count(*) FROM sqs_app_message WHERE status = 'sent'"
    )
    assert recorded.fetchone() == (140,)
