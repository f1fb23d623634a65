"""gunicorn's access log as one JSON line per request, carrying the request id.

gunicorn's own access log is an Apache-style text line built from a format
string with a dozen atoms, most of them never read, and its values are not
escaped for JSON. Wipsie's other logs are JSON (settings.LOGGING), and an
operator follows a request by its id (X-Request-ID, set by
sqs_app.middleware.RequestIdMiddleware), so this line has the same shape and
the same `request_id` field. With the access log off (GUNICORN_ACCESS_LOG=off)
gunicorn never calls it.
"""

import json
import time

from gunicorn.glogging import Logger


class JsonAccessLogger(Logger):
    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        try:
            self.access_log.info(json.dumps(access_record(resp, environ, request_time), ensure_ascii=False))
        except Exception:  # noqa: BLE001 - as gunicorn's own: a log line must never fail a request
            self.exception("Could not write the access log line")


def access_record(resp, environ, request_time) -> dict:
    """The fields of one access log line. The query string is left out: it can carry receipt handles."""
    status = resp.status
    if isinstance(status, str):
        status = status.split(None, 1)[0]
    return {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "level": "INFO",
        "logger": "gunicorn.access",
        "request_id": _header(resp.headers, "x-request-id"),
        "method": environ.get("REQUEST_METHOD"),
        "path": environ.get("PATH_INFO"),
        "status": int(status) if str(status).isdigit() else status,
        "bytes": getattr(resp, "sent", None),
        "duration_ms": round(request_time.total_seconds() * 1000, 1),
        "remote_addr": environ.get("REMOTE_ADDR"),
        "user_agent": environ.get("HTTP_USER_AGENT"),
    }


def _header(headers, name: str) -> str | None:
    items = headers.items() if hasattr(headers, "items") else headers
    for key, value in items:
        if key.lower() == name:
            return value
    return None
