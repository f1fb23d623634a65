"""The OpenAPI schema tells the truth: schemathesis against the live API.

A live server (pytest-django's, a real HTTP server in a thread) on the moto
server and the test database; schemathesis runs in its own process with a
fixed seed and a bounded number of examples per operation, authenticated as a
user with every permission. No response may be a server error, and every
response must match the schema: status code, content type, headers, body.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework_simplejwt.tokens import RefreshToken

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
]


@pytest.mark.e2e
def test_every_response_matches_the_schema_and_none_is_a_server_error(
    live_server, sqs, django_user_model, tmp_path
):
    root = django_user_model.objects.create_superuser("fuzzer", "fuzzer@example.com", "fuzzer-pass-123")
    token = RefreshToken.for_user(root).access_token

    result = subprocess.run(
        [
            str(BIN / "st"),
            "run",
            f"{live_server.url}/api/schema/?format=json",
            "--url",
            live_server.url,
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            ",".join(CHECKS),
            "--phases",
            "examples,coverage,fuzzing",
            "--seed",
            "20261201",
            "--max-examples",
            "10",
            "--workers",
            "1",
            "--generation-database",
            "none",
            "--request-timeout",
            "30",
            "--no-color",
        ],
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.api.schemathesis_hooks", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=240,
    )

    # Warnings (rate-limited token endpoints, ids that do not exist) are not
    # failures; a failed check makes the exit code non-zero.
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert re.search(r"^  \d+ generated, \d+ passed$", result.stdout, re.MULTILINE), result.stdout[-8000:]
