"""Session authentication for the browsable API whose CSRF failure is CSRF_FAILED.

DRF checks the CSRF token of session-authenticated writes itself and reports
a failure as a plain PERMISSION_DENIED; the README promises `CSRF_FAILED`,
as Django's own CSRF failure view (sqs_app.error_views) answers.
"""

from drf_spectacular.authentication import SessionScheme
from rest_framework import authentication, exceptions

from .. import errors


class SessionAuthentication(authentication.SessionAuthentication):
    def enforce_csrf(self, request):
        try:
            super().enforce_csrf(request)
        except exceptions.PermissionDenied as exc:
            raise errors.CsrfFailed(
                str(exc.detail).replace("CSRF Failed", "CSRF verification failed")
            ) from exc


class WipsieSessionScheme(SessionScheme):
    """The OpenAPI `cookieAuth` scheme for this class too (drf-spectacular matches exact classes)."""

    target_class = "sqs_app.api.csrf.SessionAuthentication"
