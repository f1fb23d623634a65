"""Who may do what: the one vocabulary of Wipsie's permissions, for every door.

The API (DRF permission classes), the admin and the management commands all
ask `allowed()` / `authorize()` here, never `user.has_perm` with a string of
their own. The permissions are Django permissions on `sqs_app.Message`
(see `MESSAGE_PERMISSIONS`), so they are granted to users and groups in the
admin like any other.

Queue grants (`sqs_app.QueueGrant`, one row per group and queue) narrow the
queue actions (`QUEUE_ACTIONS`) to some queues:

- a superuser may do everything, on every queue;
- a user none of whose groups has a queue grant may use every queue, as far
  as their permissions go;
- otherwise the user may use only the queues granted to any of their groups,
  whatever the permission came from (a group, or the user directly).

Grants narrow, they never widen: a grant gives no permission by itself. So a
service account that may only send to `notifications` is a user in a group
with the "Can send messages" permission and one grant, for `notifications`.

Seeing messages: everyone sees the messages they sent; `VIEW_ALL` shows
every message on the queues the user may use.
"""

from enum import StrEnum

from . import errors

OPERATORS_GROUP = "Wipsie operators"
VIEWERS_GROUP = "Wipsie viewers"


class Action(StrEnum):
    """An action on messages or queues; the value is the permission's codename."""

    SEND = "send_message"
    RECEIVE = "receive_message"  # receive, and delete by receipt handle
    VIEW_ALL = "view_all_messages"  # without it, a user sees the messages they sent
    REPLAY = "replay_message"
    REDRIVE = "redrive_dead_letters"
    DELETE_DEAD_LETTERS = "delete_dead_letters"
    PURGE = "purge_queue"
    MANAGE_POLLS = "manage_polls"


# (codename, description) for Message.Meta.permissions.
MESSAGE_PERMISSIONS = [
    (Action.SEND.value, "Can send messages"),
    (Action.RECEIVE.value, "Can receive messages and delete them by receipt handle"),
    (Action.VIEW_ALL.value, "Can view every user's messages"),
    (Action.REPLAY.value, "Can replay messages"),
    (Action.REDRIVE.value, "Can redrive dead letters"),
    (Action.DELETE_DEAD_LETTERS.value, "Can delete dead letters"),
    (Action.PURGE.value, "Can purge queues"),
    (Action.MANAGE_POLLS.value, "Can manage recurring polls"),
]

# The actions that concern one queue, and that queue grants narrow.
QUEUE_ACTIONS = frozenset(
    {
        Action.SEND,
        Action.RECEIVE,
        Action.VIEW_ALL,
        Action.REPLAY,
        Action.REDRIVE,
        Action.DELETE_DEAD_LETTERS,
        Action.PURGE,
    }
)


def granted_queues(user) -> frozenset[str] | None:
    """The queues `user` is limited to by queue grants, or None for every queue.

    Read once per user object (like Django's own permission cache): a request
    asks several times, and a permission change applies from the next request.
    """
    if user.is_superuser:
        return None
    if not hasattr(user, "_wipsie_granted_queues"):
        from .models import QueueGrant  # models imports this module

        queues = frozenset(QueueGrant.objects.filter(group__user=user).values_list("queue", flat=True))
        user._wipsie_granted_queues = queues or None
    return user._wipsie_granted_queues


def allowed(user, action: Action, *, queue: str | None = None) -> bool:
    """True when `user` may perform `action` (on `queue`, when the action concerns one).

    Without `queue`, the question is whether the user may perform the action
    on some queue at all (say, before the request naming the queue is parsed).
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if not user.has_perm(f"sqs_app.{action.value}"):
        return False
    if queue is None or action not in QUEUE_ACTIONS:
        return True
    queues = granted_queues(user)
    return queues is None or queue in queues


def authorize(user, action: Action, *, queue: str | None = None) -> None:
    """Raise PERMISSION_DENIED (403, in the envelope) unless `user` may perform `action`."""
    if not allowed(user, action, queue=queue):
        raise errors.ActionNotPermitted(
            details={"action": action.value, **({"queue": queue} if queue else {})}
        )
