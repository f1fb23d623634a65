"""Authorization on every API door: the permissions of sqs_app.permissions, queue grants, own history.

alice (`api_client`) is an operator; bob (`bob_client`) is an ordinary user
with no Wipsie permission until a test grants him one.
"""

import pytest
from django.contrib.auth.models import Group

from sqs_app import permissions
from sqs_app.models import Message, QueueGrant
from sqs_app.permissions import OPERATORS_GROUP, VIEWERS_GROUP, Action
from tasks_app.models import PollSchedule
from tests.helpers import (
    assert_error_envelope,
    boto_queue_url,
    drain,
    grant,
    jwt_client,
    message_count,
    notification,
    recurring_poll,
    send,
)

pytestmark = pytest.mark.django_db

# (method, path, body, the action it needs)
DOORS = [
    ("post", "/sqs/send", {"queue_name": "default", "message": {"message": "hi"}}, Action.SEND),
    (
        "post",
        "/sqs/send-batch",
        {"queue_name": "default", "messages": [{"message": {"message": "hi"}}]},
        Action.SEND,
    ),
    ("post", "/sqs/test-message", None, Action.SEND),
    ("get", "/sqs/receive/default", None, Action.RECEIVE),
    ("delete", "/sqs/message/default?receipt_handle=handle", None, Action.RECEIVE),
    ("post", "/sqs/dlq/notifications/redrive", {}, Action.REDRIVE),
    ("post", "/sqs/polls/1/stop", None, Action.MANAGE_POLLS),
    ("post", "/sqs/polls/1/pause", None, Action.MANAGE_POLLS),
    ("post", "/sqs/polls/1/resume", None, Action.MANAGE_POLLS),
    ("post", "/sqs/polls/1/run", None, Action.MANAGE_POLLS),
]


def call(client, method, path, body):
    return (
        getattr(client, method)(path, body, format="json")
        if body is not None
        else getattr(client, method)(path)
    )


def in_group(user, name: str, *, queues: tuple[str, ...] = (), actions: tuple[Action, ...] = ()):
    """Put `user` in a group (created when new) with these queue grants and permissions."""
    from django.contrib.auth.models import Permission

    group, _ = Group.objects.get_or_create(name=name)
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label="sqs_app", codename__in=[a.value for a in actions])
    )
    for queue in queues:
        QueueGrant.objects.create(group=group, queue=queue)
    user.groups.add(group)
    return type(user).objects.get(pk=user.pk)


# --- Every door refuses without the permission ------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body", "action"), DOORS, ids=[d[1] for d in DOORS])
def test_every_action_is_refused_without_its_permission(
    bob_client, sqs_untouched, method, path, body, action
):
    error = assert_error_envelope(call(bob_client, method, path, body), 403, "PERMISSION_DENIED")

    assert error["details"]["action"] == action.value


@pytest.mark.parametrize(("method", "path", "body", "action"), DOORS, ids=[d[1] for d in DOORS])
def test_another_permission_does_not_open_a_door(bob, sqs_untouched, method, path, body, action):
    others = [a for a in Action if a not in (action,)]
    client = jwt_client(grant(bob, *others))

    assert_error_envelope(call(client, method, path, body), 403, "PERMISSION_DENIED")


def test_reading_the_queue_list_needs_no_permission(bob_client):
    assert bob_client.get("/sqs/queues").status_code == 200


def test_a_staff_user_without_permissions_is_refused_too(bob, sqs_untouched):
    bob.is_staff = True
    bob.save()

    response = send(jwt_client(bob), {"message": "hi"})

    assert_error_envelope(response, 403, "PERMISSION_DENIED")


# --- ... and opens with it -------------------------------------------------------------------------


def test_the_send_permission_lets_bob_send(bob, boto_sqs):
    client = jwt_client(grant(bob, Action.SEND))

    assert send(client, {"message": "hi"}).status_code == 200
    batch = client.post(
        "/sqs/send-batch", {"queue_name": "default", "messages": [{"message": {"m": 1}}]}, format="json"
    )
    assert batch.status_code == 200, batch.content
    assert client.post("/sqs/test-message").status_code == 200
    assert message_count(boto_sqs) == 3


def test_the_receive_permission_lets_bob_receive_and_delete(bob, api_client, boto_sqs):
    send(api_client, {"message": "for whoever receives it"})
    client = jwt_client(grant(bob, Action.RECEIVE))

    received = client.get("/sqs/receive/default")
    assert received.status_code == 200, received.content
    (message,) = received.json()["messages"]
    deleted = client.delete(f"/sqs/message/default?receipt_handle={message['receipt_handle']}")

    assert deleted.status_code == 200, deleted.content
    assert message_count(boto_sqs) == 0


def test_the_redrive_permission_lets_bob_redrive(bob, sqs):
    client = jwt_client(grant(bob, Action.REDRIVE))

    response = client.post("/sqs/dlq/notifications/redrive", {}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["replayed"] == 0


def test_the_manage_polls_permission_lets_bob_stop_a_poll(bob, db):
    poll = recurring_poll()
    client = jwt_client(grant(bob, Action.MANAGE_POLLS))

    response = client.post(f"/sqs/polls/{poll.pk}/stop")

    assert response.status_code == 200, response.content
    assert PollSchedule.objects.get(pk=poll.pk).active is False


def test_a_superuser_may_do_everything(django_user_model, sqs):
    root = django_user_model.objects.create_superuser("root", "root@example.com", "root-pass-123")

    assert send(jwt_client(root), {"message": "hi"}).status_code == 200


def test_an_inactive_user_is_refused_whatever_the_permissions(bob):
    bob = grant(bob, *Action)
    bob.is_active = False

    assert not permissions.allowed(bob, Action.SEND)
    assert not permissions.allowed(bob, Action.SEND, queue="default")


# --- History: one's own messages, unless VIEW_ALL ---------------------------------------------


@pytest.fixture
def alices_message(api_client, sqs) -> str:
    response = send(api_client, notification(), queue="notifications")
    assert response.status_code == 200, response.content
    return response.json()["message_id"]


@pytest.fixture
def bobs_message(bob, sqs) -> str:
    response = send(jwt_client(grant(bob, Action.SEND)), {"message": "bob's own"})
    assert response.status_code == 200, response.content
    return response.json()["message_id"]


def listed(client) -> list[str]:
    response = client.get("/sqs/messages")
    assert response.status_code == 200, response.content
    return [r["message_id"] for r in response.json()["results"]]


def test_an_ordinary_user_sees_only_the_messages_they_sent(bob_client, alices_message, bobs_message):
    assert listed(bob_client) == [bobs_message]
    assert bob_client.get(f"/sqs/messages/{bobs_message}").status_code == 200


def test_another_users_message_is_not_found_rather_than_forbidden(bob_client, alices_message):
    response = bob_client.get(f"/sqs/messages/{alices_message}")

    error = assert_error_envelope(response, 404, "MESSAGE_NOT_FOUND")
    assert error["details"] == {"message_id": alices_message}
    standard_id = Message.objects.get(sqs_message_id=alices_message).standard_id
    assert_error_envelope(bob_client.get(f"/sqs/messages/{standard_id}"), 404, "MESSAGE_NOT_FOUND")


def test_a_message_from_another_producer_is_seen_only_with_view_all(bob, boto_sqs, api_client):
    boto_sqs.send_message(QueueUrl=boto_queue_url(boto_sqs), MessageBody="from a lambda")
    api_client.get("/sqs/receive/default")
    foreign = Message.objects.get(sent_by=None).sqs_message_id

    assert foreign not in listed(jwt_client(bob))
    assert foreign in listed(jwt_client(grant(bob, Action.VIEW_ALL)))


def test_view_all_shows_every_message(bob, alices_message, bobs_message):
    client = jwt_client(grant(bob, Action.VIEW_ALL))

    assert set(listed(client)) == {alices_message, bobs_message}
    assert client.get(f"/sqs/messages/{alices_message}").status_code == 200


def test_the_poll_list_shows_only_ones_own_polls_without_view_all(bob, user):
    def poll(sent_by):
        return recurring_poll(
            origin=Message.objects.create(queue="data_polling", body={}, sent_by=sent_by)
        ).pk

    bobs, alices = poll(bob), poll(user)

    assert [p["id"] for p in jwt_client(bob).get("/sqs/polls").json()] == [bobs]
    everything = jwt_client(grant(bob, Action.VIEW_ALL)).get("/sqs/polls").json()
    assert {p["id"] for p in everything} == {bobs, alices}


# --- Queue grants --------------------------------------------------------------------------------


def test_a_service_account_limited_to_one_queue_sends_only_there(bob, boto_sqs):
    client = jwt_client(in_group(bob, "notifier", queues=("notifications",), actions=(Action.SEND,)))

    assert send(client, notification(), queue="notifications").status_code == 200
    error = assert_error_envelope(send(client, {"message": "hi"}, queue="default"), 403, "PERMISSION_DENIED")
    assert error["details"] == {"action": "send_message", "queue": "default"}
    batch = client.post(
        "/sqs/send-batch", {"queue_name": "default", "messages": [{"message": {"m": 1}}]}, format="json"
    )
    assert_error_envelope(batch, 403, "PERMISSION_DENIED")
    assert_error_envelope(client.post("/sqs/test-message"), 403, "PERMISSION_DENIED")
    assert message_count(boto_sqs, "default") == 0
    assert message_count(boto_sqs, "notifications") == 1


def test_queue_grants_limit_receive_delete_and_redrive(bob, api_client, boto_sqs):
    send(api_client, {"message": "stays"})
    client = jwt_client(
        in_group(
            bob, "notifications team", queues=("notifications",), actions=(Action.RECEIVE, Action.REDRIVE)
        )
    )

    assert client.get("/sqs/receive/notifications").status_code == 200
    assert_error_envelope(client.get("/sqs/receive/default"), 403, "PERMISSION_DENIED")
    assert_error_envelope(client.delete("/sqs/message/default?receipt_handle=x"), 403, "PERMISSION_DENIED")
    assert client.post("/sqs/dlq/notifications/redrive", {}, format="json").status_code == 200
    assert_error_envelope(
        client.post("/sqs/dlq/default/redrive", {}, format="json"), 403, "PERMISSION_DENIED"
    )
    assert len(drain(boto_sqs)) == 1  # nothing was taken from `default`


def test_grants_of_several_groups_add_up(bob, sqs):
    bob = in_group(bob, "a", queues=("notifications",), actions=(Action.SEND,))
    client = jwt_client(in_group(bob, "b", queues=("default",)))

    assert send(client, {"message": "hi"}, queue="default").status_code == 200
    assert send(client, notification(), queue="notifications").status_code == 200
    assert_error_envelope(send(client, {"message": "hi"}, queue="task_processing"), 403, "PERMISSION_DENIED")


def test_a_grant_gives_no_permission_by_itself(bob, sqs_untouched):
    client = jwt_client(in_group(bob, "no permissions", queues=("default",)))

    assert_error_envelope(send(client, {"message": "hi"}), 403, "PERMISSION_DENIED")


def test_view_all_is_limited_to_the_granted_queues_plus_ones_own(bob, alices_message, sqs):
    bob = in_group(bob, "default watchers", queues=("default",), actions=(Action.VIEW_ALL, Action.SEND))
    client = jwt_client(bob)
    own = send(client, {"message": "bob's"}).json()["message_id"]

    assert listed(client) == [own]
    assert_error_envelope(client.get(f"/sqs/messages/{alices_message}"), 404, "MESSAGE_NOT_FOUND")


def test_a_superuser_is_not_limited_by_the_grants_of_their_groups(django_user_model, sqs):
    root = django_user_model.objects.create_superuser("root", "root@example.com", "root-pass-123")
    client = jwt_client(in_group(root, "narrow", queues=("notifications",)))

    assert send(client, {"message": "hi"}, queue="default").status_code == 200


# --- The two groups of the console ---------------------------------------------------------------


def codenames(group_name: str) -> set[str]:
    return set(Group.objects.get(name=group_name).permissions.values_list("codename", flat=True))


def test_the_operators_group_has_every_action_and_the_view_permissions():
    assert {a.value for a in Action} <= codenames(OPERATORS_GROUP)
    assert {
        "view_message",
        "view_messageevent",
        "view_pollschedule",
        "view_pollresult",
        "view_auditentry",
    } <= codenames(OPERATORS_GROUP)


def test_the_viewers_group_may_view_everything_and_do_nothing():
    viewers = codenames(VIEWERS_GROUP)

    assert {
        "view_all_messages",
        "view_message",
        "view_messageevent",
        "view_pollschedule",
        "view_auditentry",
    } <= viewers
    assert viewers & {a.value for a in Action} == {"view_all_messages"}
    assert not {c for c in viewers if not c.startswith("view_")}


def test_a_viewer_reads_all_history_and_may_not_send(bob, alices_message):
    bob.groups.add(Group.objects.get(name=VIEWERS_GROUP))
    client = jwt_client(bob)

    assert listed(client) == [alices_message]
    assert_error_envelope(send(client, {"message": "hi"}), 403, "PERMISSION_DENIED")


def test_an_operator_by_group_may_send(bob, sqs):
    bob.groups.add(Group.objects.get(name=OPERATORS_GROUP))

    assert send(jwt_client(bob), {"message": "hi"}).status_code == 200
