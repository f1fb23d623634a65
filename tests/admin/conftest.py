"""Fixtures for the admin tests: named users with exactly the permissions they need.

Permissions are granted to users directly (not through groups), so each test
says precisely what its user may do.
"""

import json

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from sqs_app.models import Message
from sqs_app.schemas import build_standard_message
from tests.helpers import notification, worker_claim, worker_failed

# What the "Wipsie viewers" group has (sqs_app migrations 0005 and 0010).
VIEWER_PERMISSIONS = [
    "sqs_app.view_message",
    "sqs_app.view_all_messages",
    "sqs_app.view_messageevent",
    "sqs_app.view_auditentry",
    "tasks_app.view_pollschedule",
    "tasks_app.view_pollresult",
    "django_celery_results.view_taskresult",
    "django_celery_beat.view_periodictask",
]


def grant(user, *perms: str):
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    # Django caches permissions on the user object.
    for cache in ("_perm_cache", "_user_perm_cache"):
        user.__dict__.pop(cache, None)
    return user


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def viewer(django_user_model):
    """Staff who may look at everything and change nothing."""
    user = django_user_model.objects.create_user("vera", "vera@example.com", "viewer-pass-123", is_staff=True)
    return grant(user, *VIEWER_PERMISSIONS)


@pytest.fixture
def viewer_client(viewer):
    """A browser of its own (not pytest-django's `client`), so it can sit beside admin_client."""
    client = Client()
    client.force_login(viewer)
    return client


def dead_lettered(subject: str = "Your export", *, raw_body: str | None = None) -> Message:
    """A notification a worker took, failed permanently and put on the DLQ."""
    body = build_standard_message(message=notification(subject=subject), queue="notifications", source="api")
    return worker_failed(
        queue="notifications",
        raw_body=raw_body or json.dumps(body),
        sqs_message_id=f"sqs-{subject}",
        error="HTTP 404 from the webhook",
    )


def worker_took(record: Message):
    """A worker's claim of a message Wipsie sent (as tasks_app.tasks makes it)."""
    return worker_claim(
        queue=record.queue, raw_body=json.dumps(record.body), sqs_message_id=record.sqs_message_id
    )


def shown_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def run_action(client, url: str, action: str, objects):
    return client.post(
        url, {"action": action, "_selected_action": [o.pk for o in objects], "index": 0}, follow=True
    )


OPERATOR_PERMISSIONS = [
    "sqs_app.send_message",
    "sqs_app.replay_message",
    "sqs_app.redrive_dead_letters",
    "sqs_app.delete_dead_letters",
    "sqs_app.purge_queue",
]


@pytest.fixture
def default_only(django_user_model):
    """Staff with every permission, narrowed by a queue grant to `default` alone."""
    from django.contrib.auth.models import Group

    from sqs_app.models import QueueGrant

    user = django_user_model.objects.create_user(
        "quinn", "quinn@example.com", "quinn-pass-123", is_staff=True
    )
    group = Group.objects.create(name="default only")
    QueueGrant.objects.create(group=group, queue="default")
    user.groups.add(group)
    return grant(user, *VIEWER_PERMISSIONS, *OPERATOR_PERMISSIONS)


@pytest.fixture
def default_only_client(default_only):
    client = Client()
    client.force_login(default_only)
    return client


def run_to_end(run_id: int, *, slices: int = 20) -> None:
    """What the worker's task does: slices until the run says there is nothing more to do now."""
    from sqs_app.operations import runs

    for _ in range(slices):
        if runs.run_slice(run_id=run_id, worker="test-worker") is None:
            return
    raise AssertionError(f"run {run_id} did not end within {slices} slices")


def celery_queue_bodies(boto_sqs) -> list[dict]:
    """The task messages on Wipsie's own `celery` queue (hidden for a minute once read)."""
    import base64

    url = boto_sqs.get_queue_url(QueueName="wipsie-celery")["QueueUrl"]
    found = []
    while batch := boto_sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60).get(
        "Messages", []
    ):
        for message in batch:
            envelope = json.loads(base64.b64decode(message["Body"]))
            found.append(envelope["headers"])
    return found


@pytest.fixture
def operator_staff_client(django_user_model):
    """Another operator (every permission, no grant): not the one who made a run."""
    user = django_user_model.objects.create_user("otto", password="otto-pass-123", is_staff=True)
    client = Client()
    client.force_login(grant(user, *VIEWER_PERMISSIONS, *OPERATOR_PERMISSIONS))
    return client
