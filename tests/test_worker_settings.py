"""Celery is configured for reliability on SQS (see wipsie_site/settings.py)."""

import pytest
from django.conf import settings

from wipsie_site.celery import app


def test_tasks_are_acknowledged_late_and_given_back_when_a_worker_dies():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True


def test_a_receive_takes_up_to_ten_messages_with_the_default_two_processes():
    assert app.conf.worker_prefetch_multiplier * 2 == 10


def test_a_dead_workers_message_comes_back_within_a_minute():
    # Live workers extend what they hold (tasks_app.sqs_transport); the dead cannot.
    assert (
        settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] == settings.CELERY_VISIBILITY_TIMEOUT
    )
    assert settings.CELERY_VISIBILITY_TIMEOUT <= 60


def test_results_are_stored_in_one_upsert_without_a_started_write():
    assert app.conf.result_backend == "tasks_app.results:RecordingResultBackend"
    assert app.conf.result_extended is True
    # A failed STARTED write would make Celery delete the message unprocessed.
    assert app.conf.task_track_started is False


def test_each_pool_process_keeps_its_database_connection_across_tasks():
    from celery.fixups.django import DjangoWorkerFixup

    assert DjangoWorkerFixup(app).db_reuse_max == settings.CELERY_DB_REUSE_MAX > 0


def test_workers_consume_the_three_families_and_wipsies_own_queue_by_logical_name():
    assert app.conf.task_default_queue == "celery"
    assert [queue.name for queue in app.conf.task_queues] == [
        "data_polling",
        "task_processing",
        "notifications",
        "celery",
    ]


def test_the_worker_uses_wipsies_consumer_transport_and_request():
    from tasks_app.tasks import MessageTask

    assert app.conf.worker_consumer == "tasks_app.worker:MessageConsumer"
    assert app.conf.broker_transport == "tasks_app.sqs_transport:Transport"
    assert MessageTask.Request == "tasks_app.worker:MessageRequest"
    assert app.conf.worker_enable_remote_control is False


def test_recurring_polls_are_django_celery_beat_periodic_tasks_the_worker_knows():
    from django_celery_beat.schedulers import DatabaseScheduler

    from tasks_app.scheduler import HeartbeatScheduler

    assert app.conf.beat_scheduler == "tasks_app.scheduler:HeartbeatScheduler"
    assert issubclass(HeartbeatScheduler, DatabaseScheduler)
    app.loader.import_default_modules()
    assert "tasks_app.tasks.send_scheduled_poll" in app.tasks


def test_the_redrive_policy_cannot_dead_letter_before_wipsie_has_made_its_attempts():
    assert settings.SQS_MAX_RECEIVE_COUNT >= settings.TASK_MAX_RETRIES + 2


@pytest.mark.parametrize("receive_count, retries, refused", [("4", "3", True), ("5", "3", False)])
def test_a_redrive_policy_that_would_fire_first_is_refused_at_start(receive_count, retries, refused):
    import subprocess
    import sys

    check = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "wipsie_site.settings",
            "DEBUG": "true",
            "SQS_MAX_RECEIVE_COUNT": receive_count,
            "TASK_MAX_RETRIES": retries,
        },
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
    )

    assert (check.returncode != 0) is refused, check.stderr
    if refused:
        assert "SQS_MAX_RECEIVE_COUNT (4) must be at least TASK_MAX_RETRIES + 2 (5)" in check.stderr
