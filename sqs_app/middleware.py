"""Request-level middleware: the request id, and the request size limit."""

from django.conf import settings

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
