"""Fixtures shared by tests/api and tests/services (the root conftest.py has the rest)."""

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
