"""Who may do what: the one vocabulary of Wipsie's permissions, for every door.

The API (DRF permission classes), the admin and the management commands all
ask `allowed()` / `authorize()` here, never `user.has_perm` with a string of
their own. The permissions are Django permissions on `sqs_app.Message`
(see `MESSAGE_PERMISSIONS`), so they are granted to users and groups in the
admin like any other.
"""

from enum import StrEnum

from . import errors


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


def allowed(user, action: Action, *, queue: str | None = None) -> bool:
    """True when `user` may perform `action` (on `queue`, when the action concerns one)."""
    if user is None or not user.is_active:
        return False
    return user.has_perm(f"sqs_app.{action.value}")


def authorize(user, action: Action, *, queue: str | None = None) -> None:
    """Raise PERMISSION_DENIED (403, in the envelope) unless `user` may perform `action`."""
    if not allowed(user, action, queue=queue):
        raise errors.ActionNotPermitted(
            details={"action": action.value, **({"queue": queue} if queue else {})}
        )
