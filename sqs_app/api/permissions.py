"""DRF permission classes: the API's door to sqs_app.permissions.

`requires(Action.SEND)` is a view's `permission_classes`: the caller must be
authenticated (401 otherwise) and hold the action's permission (403
PERMISSION_DENIED otherwise). When the URL names the queue
(`<queue_name>`), the queue grants are checked here too; a view whose queue
is in the body calls `permissions.authorize(..., queue=...)` once it has
parsed it.
"""

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
