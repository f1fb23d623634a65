"""GET /sqs/queues: the logical queues and the region."""

import pytest

from tests.helpers import assert_error_envelope

pytestmark = pytest.mark.django_db


def test_it_lists_the_four_queues_and_the_region(api_client):
    response = api_client.get("/sqs/queues")

    assert response.status_code == 200
    assert response.json() == {
        "available_queues": ["default", "data_polling", "task_processing", "notifications"],
        "region": "us-east-1",
    }


def test_it_reports_the_configured_region(api_client, settings):
    settings.AWS_REGION = "eu-west-1"

    assert api_client.get("/sqs/queues").json()["region"] == "eu-west-1"


def test_it_needs_authentication(anon_client):
    assert_error_envelope(anon_client.get("/sqs/queues"), 401, "NOT_AUTHENTICATED")


def test_it_refuses_other_methods(api_client):
    response = api_client.post("/sqs/queues", {}, format="json")

    error = assert_error_envelope(response, 405, "METHOD_NOT_ALLOWED")
    assert "POST" in error["message"]
