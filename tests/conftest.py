"""Fixtures shared by the tests under tests/ (the root conftest.py has the rest)."""

from types import SimpleNamespace
from unittest import mock

import pytest

from sqs_app import sqs_client


@pytest.fixture
def sqs_untouched():
    """For requests refused before SQS: any use of SQS fails the test.

    Cheaper than the `sqs` fixture (no moto reset), and a stronger claim than
    an empty queue: nothing was even attempted.
    """
    with mock.patch.object(
        sqs_client, "get_client", side_effect=AssertionError("SQS must not be called")
    ) as get_client:
        yield
    assert not get_client.called, "SQS was called"


@pytest.fixture
def hung_sqs(settings):
    """An SQS that accepts connections and never answers (a hung endpoint), for the admin's client.

    `connections` are the connections it was asked on (each one waits for its timeout).
    """
    import socket
    import threading

    from sqs_app import sqs_client

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held, stop = [], threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            held.append(connection)  # read nothing, answer nothing

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    settings.AWS_ENDPOINT_URL_SQS = f"http://127.0.0.1:{listener.getsockname()[1]}"
    sqs_client.reset()
    yield SimpleNamespace(url=settings.AWS_ENDPOINT_URL_SQS, connections=held)
    stop.set()
    thread.join(timeout=5)
    for connection in held:
        connection.close()
    listener.close()
    sqs_client.reset()
