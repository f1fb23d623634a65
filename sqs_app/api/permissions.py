"""DRF permission classes: the API's door to sqs_app.permissions.

`requires(Action.SEND)` is a view's `permission_classes`: the caller must be
authenticated (401 otherwise) and hold the action's permission (403
PERMISSION_DENIED otherwise). When the URL names the queue
(`<queue_name>`), the queue grants are checked here too; a view whose queue
is in the body calls `permissions.authorize(..., queue=...)` once it has
parsed it.
"""

from django.db import DatabaseError
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission, IsAuthenticated

from .. import permissions
from ..permissions import Action


class ActionPermission(BasePermission):
    action: Action

    def has_permission(self, request, view) -> bool:
        # Raise rather than return False, so that the 403 names the action.
        permissions.authorize(request.user, self.action, queue=view.kwargs.get("queue_name"))
        return True


def requires(action: Action) -> list[type[BasePermission]]:
    name = "Requires" + action.name.title().replace("_", "")
    permission = type(name, (ActionPermission,), {"action": action})
    return [IsAuthenticated, permission]


def is_staff(request) -> bool:
    """Whether the caller is active staff, for an open endpoint that says more to staff.

    For a view that reads `request.user` itself (authentication not forced up
    front): a bad or expired token makes the caller no one, not a 401, and so
    does a user who cannot be read while the database is down.
    """
    try:
        user = request.user
    except (AuthenticationFailed, DatabaseError):
        return False
    return bool(user and user.is_active and user.is_staff)
