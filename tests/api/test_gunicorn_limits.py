"""Through a real gunicorn (gunicorn.conf.py): long URLs and headers get the envelope, and a
keep-alive connection stays usable after a 413.

Before, gunicorn answered a 5,000-character receipt handle or a 9 KB header
with its own HTML page, and after a 413 on a 3.5 MB body it closed the
connection it had just promised to keep open.
"""

import http.client
import json

import pytest

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(gunicorn):
    """One gunicorn for the module, with the production settings. No request here reaches the database."""
    return gunicorn(GUNICORN_ACCESS_LOG="/dev/null", LOG_LEVEL="WARNING")


@pytest.fixture
def connection(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    yield conn
    conn.close()


def request(conn, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    conn.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
    response = conn.getresponse()
    return response, response.read()


def envelope_code(response, body: bytes) -> str:
    assert response.getheader("Content-Type") == "application/json", body[:200]
    return json.loads(body)["error"]["code"]


def test_the_connection_stays_usable_after_a_413(connection):
    too_big = b'{"queue_name": "default", "message": {"x": "' + b"a" * 3_500_000 + b'"}}'

    response, body = request(connection, "POST", "/sqs/send", too_big)
    assert (response.status, envelope_code(response, body)) == (413, "REQUEST_TOO_LARGE")
    sock = connection.sock

    for _ in range(9):
        response, body = request(connection, "GET", "/health/live")
        assert (response.status, body) == (200, b'{"status":"ok"}')
    assert connection.sock is sock  # the same keep-alive connection throughout


def test_a_long_receipt_handle_reaches_django(connection):
    response, body = request(connection, "DELETE", "/sqs/message/default?receipt_handle=" + "r" * 5000)

    assert (response.status, envelope_code(response, body)) == (401, "NOT_AUTHENTICATED")


def test_a_url_over_djangos_limit_is_a_414_envelope(connection):
    response, body = request(connection, "GET", "/sqs/messages?correlation_id=" + "c" * 20_000)

    assert (response.status, envelope_code(response, body)) == (414, "URI_TOO_LONG")


def test_a_9_kb_header_is_served_and_a_20_kb_one_is_a_431_envelope(connection):
    response, body = request(connection, "GET", "/health/live", headers={"X-Padding": "p" * 9_000})
    assert response.status == 200

    response, body = request(connection, "GET", "/health/live", headers={"X-Padding": "p" * 20_000})
    assert (response.status, envelope_code(response, body)) == (431, "HEADER_TOO_LARGE")


def test_a_nul_in_the_path_is_a_404_envelope(connection):
    response, body = request(connection, "GET", "/sqs/messages/%00")

    assert (response.status, envelope_code(response, body)) == (404, "NOT_FOUND")
