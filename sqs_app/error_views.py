"""Django's own error views (handler404 and friends), rendering the error envelope.

The admin is for people in a browser, so its errors keep Django's HTML pages;
every other path is an API path and answers in JSON.
"""

import logging

from django.core.exceptions import RequestDataTooBig
from django.views import defaults
from django.views.csrf import csrf_failure as django_csrf_failure

from .errors import error_response

logger = logging.getLogger(__name__)


def _is_admin(request) -> bool:
    return request.path.startswith("/admin/")


def bad_request(request, exception):
    if isinstance(exception, RequestDataTooBig):
        return error_response(413, "REQUEST_TOO_LARGE", "The request body is too large.")
    if _is_admin(request):
        return defaults.bad_request(request, exception)
    return error_response(400, "BAD_REQUEST", "The request could not be understood.")


def permission_denied(request, exception):
    if _is_admin(request):
        return defaults.permission_denied(request, exception)
    return error_response(403, "PERMISSION_DENIED", "You do not have permission to do this.")


def page_not_found(request, exception):
    if _is_admin(request):
        return defaults.page_not_found(request, exception)
    return error_response(404, "NOT_FOUND", f"No endpoint at {request.path}.", {"path": request.path})


def server_error(request):
    # Django has already logged the traceback (with the request id); show none of it.
    if _is_admin(request):
        return defaults.server_error(request)
    return error_response(500, "INTERNAL_ERROR", "An internal error occurred.")


def csrf_failure(request, reason=""):
    if _is_admin(request):
        return django_csrf_failure(request, reason)
    return error_response(403, "CSRF_FAILED", f"CSRF verification failed: {reason}")
