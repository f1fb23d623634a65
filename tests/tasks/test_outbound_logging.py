"""Outbound URLs are logged without userinfo and query strings (either may hold secrets)."""

import logging

from tasks_app.outbound import fetch
from tests.tasks.test_outbound import LOCAL, base_url, port, server  # noqa: F401 - fixtures


def test_httpx_logs_the_request_without_credentials_or_query(port, caplog):  # noqa: F811
    with caplog.at_level(logging.DEBUG):
        response = fetch("GET", f"http://user:hunter2@127.0.0.1:{port}/json?token=s3cret&x=1", policy=LOCAL)

    assert response.status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name.startswith(("httpx", "httpcore"))]
    assert f'HTTP Request: GET http://127.0.0.1:{port}/json "HTTP/1.0 200 OK"' in lines
    logged = "\n".join(lines)
    assert "hunter2" not in logged
    assert "s3cret" not in logged
    assert "user:" not in logged
