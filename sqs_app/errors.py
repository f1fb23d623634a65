"""Domain errors and the one error envelope every failure is rendered in.

    {"error": {"code": "QUEUE_NOT_FOUND", "message": "...", "details": {...},
               "timestamp": "...", "request_id": "req-..."}}

Code raises; it never builds an error response by hand. DRF views reach
`envelope_exception_handler`; errors raised by Django itself (unknown path,
CSRF, an unhandled exception) reach the `handler*` views in wipsie_site.urls,
which render the same envelope through `error_response`.
"""

import logging
from datetime import UTC, datetime

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DataError, IntegrityError, InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.exceptions import APIException

from .request_context import get_request_id

logger = logging.getLogger(__name__)


class WipsieError(APIException):
    """Base for every error Wipsie raises on purpose: a stable code, a status and details."""

    status_code = status.HTTP_500_INTERNAL_SERVER_ERROR
    error_code = "INTERNAL_ERROR"
    default_detail = "An internal error occurred."

    def __init__(self, message: str | None = None, *, details: dict | None = None):
        super().__init__(message or self.default_detail, self.error_code)
        self.message = str(self.detail)
        self.details = details or {}


class InvalidParameter(WipsieError):
    status_code = status.HTTP_400_BAD_REQUEST
    error_code = "INVALID_PARAMETER"
    default_detail = "A query parameter is invalid."


class ValidationFailed(WipsieError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    error_code = "VALIDATION_ERROR"
    default_detail = "The request body is invalid."


class QueueNotFound(WipsieError):
    status_code = status.HTTP_404_NOT_FOUND
    error_code = "QUEUE_NOT_FOUND"
    default_detail = "The specified queue does not exist"


class QueueNotProvisioned(WipsieError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    error_code = "QUEUE_NOT_PROVISIONED"
    default_detail = "The queue does not exist in SQS yet; run `manage.py sqs_setup`."


class MessageTooLarge(WipsieError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    error_code = "MESSAGE_TOO_LARGE"
    default_detail = "The message is larger than SQS accepts."


class InvalidReceiptHandle(WipsieError):
    status_code = status.HTTP_400_BAD_REQUEST
    error_code = "INVALID_RECEIPT_HANDLE"
    default_detail = "The receipt handle is invalid or has expired."


class MessageNotFound(WipsieError):
    status_code = status.HTTP_404_NOT_FOUND
    error_code = "MESSAGE_NOT_FOUND"
    default_detail = "No message with that id is recorded."


class PollStopped(WipsieError):
    """A stopped recurring poll is final: it cannot be paused, resumed or run again."""

    status_code = status.HTTP_409_CONFLICT
    error_code = "POLL_STOPPED"
    default_detail = "This recurring poll is stopped; send a new poll message to start another."


class SQSUnavailable(WipsieError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    error_code = "SQS_UNAVAILABLE"
    default_detail = "Amazon SQS could not be reached."


class SQSThrottled(WipsieError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    error_code = "SQS_THROTTLED"
    default_detail = "Amazon SQS is throttling requests; retry shortly."


class SQSRequestFailed(WipsieError):
    """SQS answered with an error Wipsie has no specific code for."""

    status_code = status.HTTP_502_BAD_GATEWAY
    error_code = "SQS_ERROR"
    default_detail = "Amazon SQS rejected the request."


class ActionNotPermitted(WipsieError):
    status_code = status.HTTP_403_FORBIDDEN
    error_code = "PERMISSION_DENIED"
    default_detail = "You do not have permission to do this."


class CsrfFailed(WipsieError):
    status_code = status.HTTP_403_FORBIDDEN
    error_code = "CSRF_FAILED"
    default_detail = "CSRF verification failed."


class DatabaseUnavailable(WipsieError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    error_code = "DATABASE_UNAVAILABLE"
    default_detail = "The database could not be reached."


# DRF's own exceptions, by class, mapped to our stable codes.
_DRF_CODES: list[tuple[type[Exception], str]] = [
    (drf_exceptions.ParseError, "MALFORMED_REQUEST"),
    (drf_exceptions.NotAuthenticated, "NOT_AUTHENTICATED"),
    (drf_exceptions.AuthenticationFailed, "AUTHENTICATION_FAILED"),
    (drf_exceptions.PermissionDenied, "PERMISSION_DENIED"),
    (drf_exceptions.NotFound, "NOT_FOUND"),
    (drf_exceptions.MethodNotAllowed, "METHOD_NOT_ALLOWED"),
    (drf_exceptions.NotAcceptable, "NOT_ACCEPTABLE"),
    (drf_exceptions.UnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE"),
    (drf_exceptions.Throttled, "THROTTLED"),
]


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details or {},
            "timestamp": datetime.now(UTC).isoformat(),
            "request_id": get_request_id(),
        }
    }


def error_response(status_code: int, code: str, message: str, details: dict | None = None):
    """The envelope as a plain Django response, for errors raised outside DRF."""
    return JsonResponse(error_body(code, message, details), status=status_code)


def validation_details(detail) -> dict:
    """DRF's nested error detail as {"fields": {"message.data.recipient": ["..."]}}."""
    fields: dict[str, list[str]] = {}

    def walk(node, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(key, int):
                    # DRF keys list items' errors by index (LIST_SERIALIZER_ERRORS_AS_DICT).
                    walk(value, f"{path}[{key}]")
                else:
                    walk(value, f"{path}.{key}" if path else str(key))
        elif isinstance(node, list) and node and not all(isinstance(i, str) for i in node):
            for index, value in enumerate(node):
                if value:
                    walk(value, f"{path}[{index}]")
        else:
            messages = node if isinstance(node, list) else [node]
            fields.setdefault(path or "non_field_errors", []).extend(str(m) for m in messages)

    walk(detail, "")
    return {"fields": fields}


def _unstorable(exc: Exception) -> ValidationFailed:
    logger.warning("The database refused data from the request: %s", exc)
    reason = "The request carries data the database cannot store."
    return ValidationFailed(reason, details={"fields": {"non_field_errors": [reason]}})


def _database_error(exc: Exception) -> Exception:
    """A database error as what it means: an outage, bad data (4xx), or a bug (500).

    Only a lost or refused connection is DATABASE_UNAVAILABLE. Data the
    database refuses (a NUL in text, a value out of range) is the caller's
    422, and an IntegrityError that no service turned into a domain error is
    a bug: a logged 500.
    """
    cause = exc.__cause__ if isinstance(exc, DatabaseUnavailable) else exc
    if isinstance(cause, DataError):
        return _unstorable(cause)
    if isinstance(cause, IntegrityError):
        return cause
    if isinstance(exc, (OperationalError, InterfaceError)):
        return DatabaseUnavailable()
    return exc


def envelope_exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: every exception a view raises becomes the envelope."""
    from rest_framework.response import Response

    headers = {}
    original = exc
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    else:
        exc = _database_error(exc)

    if isinstance(exc, WipsieError):
        body = error_body(exc.error_code, exc.message, exc.details)
        status_code = exc.status_code
        if status_code >= 500:
            # Every 5xx says why in the log (the request id is on every line),
            # with the underlying error the domain error was raised from.
            logger.error("%s: %s", exc.error_code, exc.message, exc_info=original)
        if isinstance(exc, SQSThrottled):
            headers["Retry-After"] = "1"
    elif isinstance(exc, drf_exceptions.ValidationError):
        status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
        body = error_body("VALIDATION_ERROR", "The request body is invalid.", validation_details(exc.detail))
    elif isinstance(exc, APIException):
        code = next((c for cls, c in _DRF_CODES if isinstance(exc, cls)), "API_ERROR")
        status_code = exc.status_code
        details = {}
        if isinstance(exc, drf_exceptions.Throttled) and exc.wait is not None:
            details["retry_after_seconds"] = int(exc.wait)
        message = exc.detail
        if isinstance(message, dict):
            # simplejwt's InvalidToken carries {"detail", "code", "messages"}: say
            # its sentence rather than the repr of a dict.
            message = message.get("detail", exc.default_detail)
        body = error_body(code, str(message), details)
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
    else:
        # Unexpected: log the traceback (with the request id) and leak nothing.
        logger.error("Unhandled error in %s", context.get("view").__class__.__name__, exc_info=original)
        status_code = status.HTTP_500_INTERNAL_SERVER_ERROR
        body = error_body("INTERNAL_ERROR", "An internal error occurred.")

    return Response(body, status=status_code, headers=headers)
