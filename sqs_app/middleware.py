"""Request-level middleware: the request id, the request size limit, and browser-only middleware."""

from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware

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


class RequestSizeLimitMiddleware:
    """Refuses a body larger than MAX_REQUEST_BYTES with 413, before reading it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
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
        return self.get_response(request)


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
