"""tasks_app.results: django-celery-results rows written in one upsert."""

import pytest
from celery import current_app
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_celery_results.models import TaskResult

pytestmark = pytest.mark.django_db


def test_a_result_is_one_statement_and_a_later_one_replaces_it():
    backend = current_app.backend

    with CaptureQueriesContext(connection) as queries:
        backend.store_result("sqs-1", {"first": True}, "SUCCESS")
    backend.store_result("sqs-1", {"exc_type": "ValueError", "exc_message": ["boom"]}, "FAILURE")

    assert len(queries) == 1, [q["sql"] for q in queries]
    row = TaskResult.objects.get()
    assert (row.task_id, row.status) == ("sqs-1", "FAILURE")
    assert "boom" in row.result
    assert current_app.AsyncResult("sqs-1").state == "FAILURE"  # django-celery-results reads it as usual
