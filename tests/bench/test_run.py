"""bench/run.py end to end, small: both servers start, every API step runs, the floor is judged."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(400)


def test_a_quick_api_run_serves_the_floor_beside_wipsie_and_compares_them(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "bench/run.py",
            "--quick",
            "--only",
            "api",
            "--emulators",
            "moto",
            "--messages",
            "20",
            "--database-url",
            f"sqlite:///{tmp_path / 'bench.sqlite3'}",
        ],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=360,
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    floor = re.search(
        r"^\| floor \(bench/floor.py\) \| 16 \| [\d,]+ \| ([\d,]+) \|", result.stdout, re.MULTILINE
    )
    assert floor and int(floor.group(1).replace(",", "")) > 0, result.stdout[-4000:]
    assert re.search(
        r"^(PASS|MISS)  \[moto, for reference\] POST /sqs/send over the floor \(bench/floor.py\) "
        r"in the same run, at 16 clients: [\d.]+x",
        result.stdout,
        re.MULTILINE,
    ), result.stdout[-4000:]
    assert "database round trips per send (fresh id)" in result.stdout
