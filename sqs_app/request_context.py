"""The id of the request being served, visible to error envelopes and log lines.

A context variable rather than a thread-local so that it is right under both
gunicorn's threads and an ASGI server's tasks.
"""

import contextvars
import re
import uuid

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# A caller-supplied X-Request-ID is kept (so that ids can be traced across
# services) only if it is short and plain; anything else could forge log lines.
_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def new_request_id(incoming: str | None = None) -> str:
    if incoming and _ACCEPTABLE_ID.match(incoming):
        return incoming
    return f"req-{uuid.uuid4()}"


def get_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None) -> contextvars.Token:
    return _request_id.set(value)


def reset_request_id(token: contextvars.Token) -> None:
    _request_id.reset(token)
