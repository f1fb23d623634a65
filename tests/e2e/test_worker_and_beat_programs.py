"""End to end: `celery worker` and `celery beat` started exactly as k8s/ starts them.

With LOG_FORMAT=json every line either writes, on stdout and stderr, is one
JSON object (Celery's banners included: tasks_app.programs), and beat keeps
the heartbeat file its liveness probe reads fresh (tasks_app.scheduler).
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import free_port

from .conftest import BIN, ROOT, wait_until, worker_database_url

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

K8S = ROOT / "k8s"


def manifest_command(path: str, deployment: str) -> list[str]:
    """The container's command in a k8s manifest, with our virtualenv's `celery`."""
    for document in yaml.safe_load_all((K8S / path).read_text()):
        if document["metadata"]["name"] == deployment:
            [container] = document["spec"]["template"]["spec"]["containers"]
            command = container["command"]
            assert command[0] == "celery"
            return [str(BIN / "celery"), *command[1:]]
    raise AssertionError(f"no {deployment} in {path}")


def configmap_value(name: str) -> str:
    return yaml.safe_load((K8S / "configmap.yaml").read_text())["data"][name]


class Program:
    """A process started from a manifest's command, its stdout and stderr each in a file."""

    def __init__(self, argv: list[str], tmp_path: Path, name: str, env: dict):
        self.stdout, self.stderr = tmp_path / f"{name}.stdout", tmp_path / f"{name}.stderr"
        with self.stdout.open("w") as out, self.stderr.open("w") as err:
            self.process = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=out, stderr=err, start_new_session=True
            )

    def lines(self) -> list[str]:
        return self.stdout.read_text().splitlines() + self.stderr.read_text().splitlines()

    def stop(self) -> int:
        """SIGTERM, as Kubernetes stops a pod; the exit status."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise


@pytest.fixture
def start(sqs, transactional_db, tmp_path):
    started: list[Program] = []

    def run(argv: list[str], name: str, **extra_env: str) -> Program:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "wipsie_site.settings",
            "DATABASE_URL": worker_database_url(),
            "AWS_ENDPOINT_URL_SQS": sqs,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "CELERY_WAIT_TIME_SECONDS": "1",
            "DATABASE_POOL_SIZE": "1",
            "WIPSIE_HEARTBEAT_FILE": str(tmp_path / f"{name}.heartbeat"),
            **extra_env,
        }
        started.append(Program(argv, tmp_path, name, env))
        return started[-1]

    yield run
    for program in started:
        if program.process.poll() is None:
            program.stop()


def test_beat_touches_its_heartbeat_file_on_every_tick_and_its_probe_passes(start, tmp_path):
    heartbeat = tmp_path / "beat.heartbeat"
    beat = start(manifest_command("beat-deployment.yaml", "wipsie-beat"), "beat")

    first = wait_until(lambda: heartbeat.exists() and heartbeat.stat().st_mtime)
    wait_until(lambda: heartbeat.stat().st_mtime > first, timeout=30)  # ticks at least every 5 s
    probe = subprocess.run(
        [sys.executable, "-m", "tasks_app.heartbeat", "--max-age", "60"],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "WIPSIE_HEARTBEAT_FILE": str(heartbeat)},
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert probe.returncode == 0, probe.stdout
    assert beat.process.poll() is None


def test_with_json_logs_every_line_of_worker_and_beat_is_a_json_object(start, tmp_path):
    assert configmap_value("LOG_FORMAT") == "json"
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    worker = start(
        manifest_command("worker-deployment.yaml", "wipsie-worker-data-polling"),
        "worker",
        LOG_FORMAT="json",
        WORKER_METRICS_PORT=str(free_port()),
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    beat = start(manifest_command("beat-deployment.yaml", "wipsie-beat"), "beat", LOG_FORMAT="json")
    wait_until(lambda: " ready." in worker.stderr.read_text() or worker.process.poll() is not None)
    wait_until(lambda: "beat: Starting..." in beat.stderr.read_text() or beat.process.poll() is not None)

    assert (worker.stop(), beat.stop()) == (0, 0), worker.lines() + beat.lines()

    for program in (worker, beat):
        records = []
        for line in program.lines():
            try:
                records.append(json.loads(line))
            except ValueError:
                pytest.fail(f"not a JSON line: {line!r}")
        assert all(isinstance(record, dict) for record in records)
        # The banner is there, as one record.
        [banner] = [record for record in records if record["logger"] == "celery.banner"]
        assert "[config]" in banner["message"] or "Configuration" in banner["message"]
