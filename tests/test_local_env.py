"""Beside `make run`, a second terminal's manage.py finds the platform's settings (.run/local.env)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from wipsie_site import local_env

ROOT = Path(__file__).resolve().parent.parent


def run_platform_module():
    spec = importlib.util.spec_from_file_location("run_platform", ROOT / "scripts" / "run_platform.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def manage(*args, env_file: Path | None) -> subprocess.CompletedProcess:
    # A terminal with nothing Wipsie-specific set: no SECRET_KEY, no DEBUG, no endpoint.
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    if env_file:
        env["WIPSIE_LOCAL_ENV_FILE"] = str(env_file)
    else:
        env["WIPSIE_LOCAL_ENV_FILE"] = "/nonexistent/local.env"
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def database_url() -> str:
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    return f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT'] or 5432}/{settings['NAME']}"


@pytest.mark.django_db
def test_manage_py_beside_make_run_reaches_its_local_sqs_without_a_secret_key(sqs, tmp_path):
    platform = run_platform_module()
    env = {**platform.LOCAL_DEFAULTS, "AWS_ENDPOINT_URL_SQS": sqs, "DATABASE_URL": database_url()}
    env_file = local_env.write(platform.shared_settings(env), tmp_path / "local.env")

    result = manage("sqs_queues", "--json", env_file=env_file)

    assert result.returncode == 0, result.stderr
    assert [row["name"] for row in json.loads(result.stdout)][-1] == "celery"
    assert env_file.read_text().startswith(local_env.MARKER)
    assert "DJANGO_SUPERUSER_PASSWORD" not in env_file.read_text()


def test_without_it_a_missing_secret_key_is_one_line_not_a_traceback():
    result = manage("sqs_queues", env_file=None)

    assert result.returncode == 2
    assert result.stderr.startswith("Configuration error: SECRET_KEY is not set.")
    assert "Traceback" not in result.stderr


def test_remove_deletes_only_a_file_make_run_wrote(tmp_path):
    ours = local_env.write({"DEBUG": "true"}, tmp_path / "ours.env")
    theirs = tmp_path / "theirs.env"
    theirs.write_text("DEBUG=false\n")

    local_env.remove(ours)
    local_env.remove(theirs)

    assert not ours.exists()
    assert theirs.exists()
