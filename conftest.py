"""Shared fixtures. The local SQS is a real moto server, spoken to over HTTP."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from sqs_app import sqs_client
from sqs_app.permissions import Action
from tests.helpers import grant, jwt_client

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)  # noqa: S310 - our own loopback server
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(scope="session")
def moto_endpoint():
    """A moto server on loopback for the whole run (or the one named by MOTO_ENDPOINT)."""
    endpoint = os.environ.get("MOTO_ENDPOINT")
    process = None
    if not endpoint:
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        process = subprocess.Popen(
            [BIN / "moto_server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    wait_for_http(f"{endpoint}/moto-api/")
    settings.AWS_ENDPOINT_URL_SQS = endpoint
    _point_celery_at(endpoint)
    # Processes started by end-to-end tests inherit these.
    os.environ["AWS_ENDPOINT_URL_SQS"] = endpoint
    os.environ["AWS_ENDPOINT_URL_SNS"] = endpoint
    sqs_client.reset()
    yield endpoint
    if process:
        process.terminate()
        process.wait(timeout=10)


def _point_celery_at(endpoint: str) -> None:
    """Tasks this process queues (an operator run's) go to the moto server too.

    The broker URL is derived from AWS_ENDPOINT_URL_SQS when settings load,
    before this fixture knows the server's port.
    """
    from urllib.parse import urlsplit

    from wipsie_site.celery import app

    app.conf.broker_url = f"sqs://testing:testing@{urlsplit(endpoint).netloc}"
    app.conf.broker_transport_options = {**app.conf.broker_transport_options, "is_secure": False}


@pytest.fixture
def sqs(moto_endpoint):
    """Fresh, empty Wipsie queues on the moto server (moto slows down as queues fill)."""
    urllib.request.urlopen(  # noqa: S310 - our own loopback server
        urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    )
    sqs_client.reset()
    sqs_client.ensure_all_queues()
    yield moto_endpoint
    sqs_client.reset()


@pytest.fixture
def boto_sqs(sqs):
    """A plain boto3 client on the same SQS, to check what really is in the queues."""
    return boto3.client(
        "sqs",
        region_name=settings.AWS_REGION,
        endpoint_url=sqs,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def user(django_user_model):
    """alice: an ordinary user, with no Wipsie permission of her own."""
    return django_user_model.objects.create_user("alice", "alice@example.com", "wonderland-pass")


@pytest.fixture
def operator(user):
    """alice, with every Wipsie permission (what the "Wipsie operators" group has)."""
    return grant(user, *Action)


@pytest.fixture
def bob(django_user_model):
    """An ordinary user with no Wipsie permission, beside alice."""
    return django_user_model.objects.create_user("bob", "bob@example.com", "builder-pass-123")


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser("admin", "admin@example.com", "admin-pass-123")


@pytest.fixture
def anon_client():
    return APIClient()


@pytest.fixture
def operator_client(operator):
    """An API client carrying a real JWT for alice as an operator (every Wipsie permission)."""
    return jwt_client(operator)


@pytest.fixture
def api_client(operator_client):
    """The client most tests use: alice as an operator (the same as `operator_client`)."""
    return operator_client


@pytest.fixture
def bob_client(bob):
    """An API client carrying a real JWT for bob, who has no Wipsie permission."""
    return jwt_client(bob)
