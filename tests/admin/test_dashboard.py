"""The dashboard (admin index): live depths, recent outcomes with links, a 24-hour chart, a hung SQS."""

import json
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.utils import timezone

from sqs_app import sqs_client
from sqs_app.models import Message, MessageStatus
from sqs_app.queues import celery_queue_spec
from sqs_app.services import message_send
from tests.admin.conftest import dead_lettered
from tests.helpers import make_sqs_unreachable, notification

pytestmark = pytest.mark.django_db

INDEX = "/admin/"


def figures(response, window: str) -> dict[str, dict[str, dict]]:
    [activity] = [a for a in response.context["activity"] if a["label"] == window]
    return {row["queue"]: {cell["figure"]: cell for cell in row["cells"]} for row in activity["rows"]}


def message(status, *, queue="notifications", created_ago=timedelta(0), finished_ago=None) -> Message:
    now = timezone.now()
    record = Message.objects.create(queue=queue, body={}, status=status)
    Message.objects.filter(pk=record.pk).update(
        created_at=now - created_ago, finished_at=now - finished_ago if finished_ago is not None else None
    )
    return record


def listed(client, link: str) -> set[int]:
    response = client.get(link)
    assert response.status_code == 200, link
    return {m.pk for m in response.context["cl"].result_list}


def test_the_dashboard_shows_each_queues_depth_from_sqs(admin_client, sqs):
    message_send(queue="notifications", message=notification())
    message_send(queue="notifications", message=notification())
    dead_lettered()

    response = admin_client.get(INDEX)

    assert response.status_code == 200
    rows = {row["name"]: [value for value, _ in row["cells"]] for row in response.context["depth_rows"]}
    assert rows["notifications"] == [2, 0, 0, 1]  # visible, in flight, delayed, DLQ
    assert rows["default"] == [0, 0, 0, 0]
    assert response.context["sqs_notice"] is None


def test_the_last_hour_and_day_count_what_happened_and_each_figure_links_to_those_messages(admin_client, sqs):
    sent_now = message(MessageStatus.SENT)
    succeeded_now = message(MessageStatus.SUCCEEDED, finished_ago=timedelta(minutes=5))
    succeeded_earlier = message(
        MessageStatus.SUCCEEDED, created_ago=timedelta(hours=5), finished_ago=timedelta(hours=3)
    )
    failed_now = message(MessageStatus.FAILED, finished_ago=timedelta(minutes=1))
    dead_earlier = message(
        MessageStatus.DEAD_LETTERED, created_ago=timedelta(hours=9), finished_ago=timedelta(hours=8)
    )
    retrying = message(MessageStatus.RETRYING, created_ago=timedelta(hours=2))
    message(MessageStatus.SUCCEEDED, created_ago=timedelta(days=3), finished_ago=timedelta(days=2))  # too old

    response = admin_client.get(INDEX)

    hour, day = figures(response, "hour")["notifications"], figures(response, "day")["notifications"]
    assert {k: c["value"] for k, c in hour.items()} == {
        "sent": 3,
        "succeeded": 1,
        "failed": 1,
        "retrying": 1,
        "dead_lettered": 0,
    }
    assert {k: c["value"] for k, c in day.items()} == {
        "sent": 6,
        "succeeded": 2,
        "failed": 1,
        "retrying": 1,
        "dead_lettered": 1,
    }
    assert listed(admin_client, hour["sent"]["link"]) == {sent_now.pk, succeeded_now.pk, failed_now.pk}
    assert listed(admin_client, hour["succeeded"]["link"]) == {succeeded_now.pk}
    assert listed(admin_client, day["succeeded"]["link"]) == {succeeded_now.pk, succeeded_earlier.pk}
    assert listed(admin_client, day["dead_lettered"]["link"]) == {dead_earlier.pk}
    assert listed(admin_client, hour["retrying"]["link"]) == {retrying.pk}
    assert figures(response, "hour")["default"]["sent"]["value"] == 0


def test_the_depth_figures_link_to_the_queue_and_its_dead_letters(admin_client, sqs):
    failed = dead_lettered()
    Message.objects.create(queue="default", body={}, status=MessageStatus.SENT)

    response = admin_client.get(INDEX)

    [row] = [r for r in response.context["depth_rows"] if r["name"] == "notifications"]
    assert dict(parse_qsl(urlsplit(row["link"]).query)) == {"queue__exact": "notifications"}
    dead_link = row["cells"][3][1]
    assert listed(admin_client, dead_link) == {failed.pk}


def test_the_chart_has_24_hours_of_throughput_and_failures(admin_client, sqs):
    message(MessageStatus.SUCCEEDED, finished_ago=timedelta(0))
    message(MessageStatus.FAILED, created_ago=timedelta(hours=2), finished_ago=timedelta(hours=2))

    response = admin_client.get(INDEX)

    chart = json.loads(response.context["chart"])
    assert len(chart["labels"]) == 24
    sent, succeeded, failed = (d["data"] for d in chart["datasets"])
    assert (sent[-1], succeeded[-1], failed[-1]) == (1, 1, 0)
    assert (sum(sent), sum(succeeded), sum(failed)) == (2, 1, 1)
    assert failed[-3] == 1
    assert b'canvas class="chart"' in response.content
    assert b"/static/unfold/js/chart/chart.js" in response.content


def test_an_unreachable_sqs_is_a_notice_and_the_history_still_shows(admin_client, sqs, settings):
    message(MessageStatus.SENT)
    make_sqs_unreachable(settings)

    response = admin_client.get(INDEX)

    assert response.status_code == 200
    assert "SQS did not answer" in response.context["sqs_notice"]
    assert 'id="sqs-notice"' in response.content.decode()
    assert figures(response, "hour")["notifications"]["sent"]["value"] == 1


@pytest.mark.timeout(20)
def test_a_hung_sqs_is_a_notice_within_seconds_not_a_stalled_page(admin_client, hung_sqs):
    # The normal client would wait 30 s per attempt, three attempts, per queue:
    # this test's 20 s limit fails it. The admin's quick client gives up at once.
    response = admin_client.get(INDEX)

    assert response.status_code == 200
    assert "SQS_UNAVAILABLE" in response.context["sqs_notice"]
    # One call, one attempt, so the page waits one SQS_ADMIN_TIMEOUT_SECONDS (1 s) in all,
    # not one per queue: five queues and their DLQs would be ten.
    assert len(hung_sqs.connections) == 1


def test_the_quick_client_is_separate_with_a_short_timeout_and_one_attempt(sqs, settings):
    settings.SQS_ADMIN_TIMEOUT_SECONDS = 1.5
    sqs_client.reset()

    normal = sqs_client.get_client()
    with sqs_client.quick_calls():
        quick = sqs_client.get_client()
        assert sqs_client.get_client("sns") is not quick  # only SQS reads are cut short
    after = sqs_client.get_client()

    assert quick is not normal and after is normal
    assert (quick.meta.config.read_timeout, quick.meta.config.connect_timeout) == (1.5, 1.5)
    assert quick.meta.config.retries["total_max_attempts"] == 1
    assert normal.meta.config.read_timeout == settings.SQS_READ_TIMEOUT_SECONDS


def test_someone_who_may_not_view_messages_sees_no_figures(client, django_user_model, sqs_untouched):
    nobody = django_user_model.objects.create_user("nora", password="pw-123456789", is_staff=True)
    client.force_login(nobody)

    response = client.get(INDEX)

    assert response.status_code == 200
    assert "depth_rows" not in response.context


def test_the_dashboard_can_refresh_itself_but_not_faster_than_every_5_seconds(admin_client, sqs):
    assert b'http-equiv="refresh"' not in admin_client.get(INDEX).content
    assert b'<meta http-equiv="refresh" content="30">' in admin_client.get(INDEX, {"refresh": "30"}).content
    assert b'<meta http-equiv="refresh" content="5">' in admin_client.get(INDEX, {"refresh": "1"}).content


def test_wipsie_s_own_task_queue_shows_its_depths_and_each_figure_leads_somewhere(
    admin_client, sqs, boto_sqs
):
    celery = celery_queue_spec()
    boto_sqs.send_message(
        QueueUrl=boto_sqs.get_queue_url(QueueName=celery.physical_name)["QueueUrl"], MessageBody="{}"
    )
    boto_sqs.send_message(
        QueueUrl=boto_sqs.get_queue_url(QueueName=celery.dlq_name)["QueueUrl"], MessageBody="{}"
    )

    response = admin_client.get(INDEX)

    [row] = [r for r in response.context["depth_rows"] if r["name"] == "celery"]
    assert [value for value, _ in row["cells"]] == [1, 0, 0, 1]
    # Its work is beat's runs of the recurring polls; its dead letters are on the queues page.
    assert row["link"] == row["cells"][0][1] == "/admin/tasks_app/pollschedule/"
    assert row["cells"][3][1] == "/admin/sqs_app/message/queues/"
    for _, link in row["cells"]:
        assert admin_client.get(link).status_code == 200
    assert 'href="/admin/tasks_app/pollschedule/">celery</a>' in response.content.decode()


def test_the_age_of_the_oldest_message_links_to_the_oldest_open_messages(admin_client, sqs):
    oldest = message(MessageStatus.SENT, created_ago=timedelta(minutes=30))
    message(MessageStatus.RETRYING, created_ago=timedelta(minutes=5))
    message(MessageStatus.SUCCEEDED, created_ago=timedelta(hours=2), finished_ago=timedelta(hours=1))
    message(MessageStatus.SENT, queue="default", created_ago=timedelta(hours=3))

    response = admin_client.get(INDEX)

    [row] = [r for r in response.context["depth_rows"] if r["name"] == "notifications"]
    assert 30 * 60 <= row["oldest"] < 31 * 60
    assert listed(admin_client, row["oldest_link"]) == {oldest.pk}
    assert (
        f'data-figure="oldest" href="{row["oldest_link"]}"'.replace("&", "&amp;") in response.content.decode()
    )


def test_the_oldest_link_holds_however_long_sqs_takes_to_answer(admin_client, sqs, monkeypatch):
    oldest = message(MessageStatus.SENT, created_ago=timedelta(minutes=30))
    answer_depths = sqs_client.queue_depths
    page_began = timezone.now()

    def depths_answered_late(*args, **kwargs):  # the clock moves on while SQS answers
        monkeypatch.setattr(timezone, "now", lambda: page_began + timedelta(seconds=5))
        return answer_depths(*args, **kwargs)

    monkeypatch.setattr(timezone, "now", lambda: page_began)
    monkeypatch.setattr(sqs_client, "queue_depths", depths_answered_late)
    response = admin_client.get(INDEX)
    monkeypatch.undo()

    [row] = [r for r in response.context["depth_rows"] if r["name"] == "notifications"]
    assert listed(admin_client, row["oldest_link"]) == {oldest.pk}
