"""Celery is configured for reliability on SQS (see wipsie_site/settings.py)."""

from django.conf import settings

from wipsie_site.celery import app


def test_tasks_are_acknowledged_late_and_given_back_when_a_worker_dies():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1


def test_a_message_stays_hidden_longer_than_the_longest_task_may_run():
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert app.conf.task_soft_time_limit < app.conf.task_time_limit < visibility


def test_results_are_stored_in_the_database_with_extended_fields():
    assert app.conf.result_backend == "django-db"
    assert app.conf.result_extended is True
    assert app.conf.task_track_started is True


def test_celery_task_messages_travel_on_a_queue_of_their_own_beside_the_four():
    assert app.conf.task_default_queue == "wipsie-celery"
    assert settings.WIPSIE_WORKER_QUEUES == ["data_polling", "task_processing", "notifications"]


def test_the_worker_consumes_the_task_queues_with_the_wipsie_consumer_step():
    assert "tasks_app.consumer:StandardMessageConsumer" in app.steps["consumer"]


def test_beat_enqueues_due_polls_with_a_task_the_worker_knows():
    entry = settings.CELERY_BEAT_SCHEDULE["enqueue-due-polls"]
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks
