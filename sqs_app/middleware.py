"""Request-level middleware: the request id, the request size limit, and browser-only middleware."""

from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.handlers.wsgi import LimitedStream

from .errors import error_response
from .request_context import new_request_id, reset_request_id, set_request_id


class RequestIdMiddleware:
    """Gives every request an id, sent back as X-Request-ID and put in every log line."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = new_request_id(request.headers.get("X-Request-ID"))
        request.request_id = request_id
        token = set_request_id(request_id)
        try:
            response = self.get_response(request)
        finally:
            reset_request_id(token)
        response["X-Request-ID"] = request_id
        return response


# A body left unread (refused with 413, or before any view read it: a 401, a
# 403) is read and dropped up to this size, so that the keep-alive connection
# stays usable: gunicorn itself drains only 64 KiB and then closes the
# connection, after a response that promised to keep it open.
UNREAD_BODY_DRAIN_BYTES = 16 * 1024 * 1024


class RequestSizeLimitMiddleware:
    """Refuses a body larger than MAX_REQUEST_BYTES with 413, before reading it.

    Also a URL longer than MAX_URL_BYTES (414) and a header longer than
    MAX_HEADER_BYTES (431): gunicorn's own limits are set above these
    (gunicorn.conf.py), so that such requests reach Django and get the
    envelope rather than gunicorn's HTML page.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.refusal(request) or self.get_response(request)
        discard_unread_body(request)
        return response

    def refusal(self, request):
        url_bytes = len(request.META.get("PATH_INFO", "").encode()) + len(
            request.META.get("QUERY_STRING", "").encode()
        )
        if url_bytes > settings.MAX_URL_BYTES:
            return error_response(
                414,
                "URI_TOO_LONG",
                f"The URL is {url_bytes} bytes; at most {settings.MAX_URL_BYTES} are accepted.",
                {"size_bytes": url_bytes, "max_bytes": settings.MAX_URL_BYTES},
            )
        for name, value in request.META.items():
            if name.startswith("HTTP_") and isinstance(value, str) and len(value) > settings.MAX_HEADER_BYTES:
                header = name[5:].replace("_", "-").title()
                return error_response(
                    431,
                    "HEADER_TOO_LARGE",
                    f"The {header} header is {len(value)} bytes; at most {settings.MAX_HEADER_BYTES} "
                    "are accepted.",
                    {"header": header, "size_bytes": len(value), "max_bytes": settings.MAX_HEADER_BYTES},
                )
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(400, "BAD_REQUEST", "Content-Length is not a number.")
        if length > settings.MAX_REQUEST_BYTES:
            return error_response(
                413,
                "REQUEST_TOO_LARGE",
                f"The request body is {length} bytes; at most {settings.MAX_REQUEST_BYTES} are accepted.",
                {"size_bytes": length, "max_bytes": settings.MAX_REQUEST_BYTES},
            )
        return None


def discard_unread_body(request) -> None:
    stream = getattr(request, "_stream", None)  # Django's LimitedStream over wsgi.input
    if not isinstance(stream, LimitedStream) or stream.limit > UNREAD_BODY_DRAIN_BYTES:
        return
    try:
        while stream.read(64 * 1024):
            pass
    except OSError:  # the client went away; nothing to keep usable
        pass


# --- Browser-only middleware -------------------------------------------------------


def is_bearer_api_request(request) -> bool:
    """A /sqs call authenticated by a bearer token: no cookie, session or flash message can matter.

    DRF authenticates it with the token alone (a bad token is a 401, never a
    fall-back to the session), its views are CSRF-exempt (a bearer header is
    not ambient, so no other site can make a browser send it), and they
    render JSON, not templates with messages.
    """
    return request.path_info.startswith("/sqs/") and request.META.get("HTTP_AUTHORIZATION", "").startswith(
        "Bearer "
    )


def browser_only(middleware_class):
    """The same middleware, skipped for bearer API calls (see `is_bearer_api_request`).

    The admin, the browsable API, the token endpoints and every request
    without a bearer token still go through it.
    """

    class BrowserOnly(middleware_class):
        def __call__(self, request):
            if is_bearer_api_request(request):
                return self.get_response(request)
            return super().__call__(request)

    BrowserOnly.__name__ = BrowserOnly.__qualname__ = f"BrowserOnly{middleware_class.__name__}"
    BrowserOnly.__doc__ = f"{middleware_class.__name__}, skipped for bearer API calls."
    return BrowserOnly


BrowserOnlySessionMiddleware = browser_only(SessionMiddleware)
BrowserOnlyAuthenticationMiddleware = browser_only(AuthenticationMiddleware)
BrowserOnlyMessageMiddleware = browser_only(MessageMiddleware)
