"""Logging helpers wired in by settings.LOGGING."""

import logging

from .request_context import get_request_id


class RequestIdFilter(logging.Filter):
    """Stamps every record with the current request id (or "-" outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = get_request_id() or "-"
        return True
