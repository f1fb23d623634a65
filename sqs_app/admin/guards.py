"""Server-side permission checks for the admin's custom views and actions.

Hiding a button is a courtesy; these checks are the rule. Every custom view
calls `require()` before it reads or changes anything, for GET and POST alike,
so a crafted request from a user without the permission gets 403.
"""

from django.core.exceptions import PermissionDenied

from ..permissions import Action, allowed


def can(request, action: Action, *, queue: str | None = None) -> bool:
    return allowed(request.user, action, queue=queue)


def require(request, action: Action, *, queue: str | None = None) -> None:
    """403 (Django's PermissionDenied) unless the user may perform `action`."""
    if not can(request, action, queue=queue):
        raise PermissionDenied(f"Not permitted: {action.value}" + (f" on {queue}" if queue else ""))


def require_view(request, model_admin) -> None:
    """403 unless the user may view the model (Django's own view permission)."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied("You may not view messages.")


class RefuseUnpermittedActions:
    """A ModelAdmin mixin: a crafted POST of an action the user may not run is 403.

    Django only hides such an action and answers "No action selected"; the
    console says no outright, as it does for its own pages.
    """

    def changelist_view(self, request, extra_context=None):
        action = request.POST.get("action") if request.method == "POST" else None
        if action and action not in self.get_actions(request):
            declared = {name for _, name, _ in self._get_base_actions()}
            if action in declared:
                raise PermissionDenied(f"Not permitted: {action}")
        return super().changelist_view(request, extra_context)
