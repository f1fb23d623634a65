"""bench/inprocess.py runs a send through the WSGI handler and reports its CPU (here on moto and SQLite)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_it_reports_cpu_per_message_and_the_pieces(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "bench/inprocess.py",
            "--emulator",
            "moto",
            "--requests",
            "20",
            "--database-url",
            f"sqlite:///{tmp_path / 'inprocess.sqlite3'}",
        ],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "INPROCESS_PARTS": "1", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=240,
    )

    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    summary = re.search(r"moto, POST /sqs/send, 20 requests in one thread: ([\d.]+) ms CPU", result.stdout)
    assert summary and float(summary.group(1)) > 0
    for piece in ("the body's validation", "boto3 send_message", "services.message_send"):
        assert re.search(rf"[\d.]+ ms CPU per call  {re.escape(piece)}", result.stdout), result.stdout
