"""The console around the messages: sidebar, "View site", API docs offline, task results, users, polls."""

import re

import pytest
from django_celery_results.models import TaskResult

from tests.helpers import recurring_poll

pytestmark = pytest.mark.django_db

SIDEBAR = [
    "Dashboard",
    "Queues",
    "Messages",
    "Dead letters",
    "Send",
    "Recurring polls",
    "Operator runs",
    "Task results",
    "Audit log",
    "Users",
    "Groups",
]


def sidebar(response) -> dict[str, str]:
    return {
        item["title"]: item["link"]
        for group in response.context["sidebar_navigation"]
        for item in group["items"]
        if item["has_permission"]
    }


def test_the_sidebar_has_every_page_and_each_one_opens(admin_client, sqs):
    response = admin_client.get("/admin/")

    links = sidebar(response)
    assert list(links) == SIDEBAR
    for title, link in links.items():
        assert admin_client.get(link).status_code == 200, title
    content = response.content.decode()
    assert "Wipsie" in content and "SQS operations console" in content


def test_a_viewer_is_not_shown_send_in_the_sidebar(viewer_client, sqs):
    links = sidebar(viewer_client.get("/admin/"))

    assert "Send" not in links
    assert {"Dashboard", "Messages", "Queues", "Recurring polls", "Task results", "Audit log"} <= set(links)
    for title, link in links.items():
        assert viewer_client.get(link).status_code == 200, title


def test_the_sidebar_opens_the_recurring_polls_and_the_audit_log_pages(admin_client, sqs):
    links = sidebar(admin_client.get("/admin/"))

    assert links["Recurring polls"] == "/admin/tasks_app/pollschedule/"
    assert links["Audit log"] == "/admin/sqs_app/auditentry/"
    assert links["Operator runs"] == "/admin/sqs_app/operatorrun/"
    assert links["Task results"] == "/admin/django_celery_results/taskresult/"


def test_view_site_leads_to_the_api_docs_which_load_nothing_from_outside(admin_client, sqs):
    index = admin_client.get("/admin/")
    assert index.context["site_url"] == "/api/docs/"

    docs = admin_client.get("/api/docs/")

    assert docs.status_code == 200
    html = docs.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui-bundle.js" in s for s in sources)
    assert all(s.startswith("/") for s in sources), sources
    assert "cdn" not in html.lower()


def test_admin_pages_load_nothing_from_outside(admin_client, sqs):
    poll = recurring_poll()
    pages = [
        "/admin/",
        "/admin/sqs_app/message/",
        "/admin/sqs_app/message/send/",
        "/admin/tasks_app/pollschedule/",
        f"/admin/tasks_app/pollschedule/{poll.pk}/change/",
        f"/admin/tasks_app/pollschedule/{poll.pk}/stop/",
        "/admin/tasks_app/pollresult/",
        "/admin/sqs_app/auditentry/",
        "/admin/django_celery_beat/periodictask/",
        f"/admin/django_celery_beat/periodictask/{poll.periodic_task_id}/change/",
    ]
    for path in pages:
        html = admin_client.get(path).content.decode()
        sources = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
        # Our own static files, and Django's JavaScript catalogue (served by the admin itself).
        assert sources and all(s.startswith(("/static/", "/admin/jsi18n/")) for s in sources), (path, sources)


def test_the_swagger_files_are_served_by_wipsie(client):
    docs = client.get("/api/docs/").content.decode()
    [bundle] = re.findall(r'src="([^"]*swagger-ui-bundle\.js)"', docs)

    response = client.get(bundle)

    assert response.status_code == 200


def test_task_results_are_read_only_with_no_add(admin_client):
    result = TaskResult.objects.create(task_id="t-1", status="FAILURE", traceback="Traceback: boom")

    listing = admin_client.get("/admin/django_celery_results/taskresult/")
    detail = admin_client.get(f"/admin/django_celery_results/taskresult/{result.pk}/change/")

    assert listing.status_code == detail.status_code == 200
    assert listing.context["has_add_permission"] is False
    assert admin_client.get("/admin/django_celery_results/taskresult/add/").status_code == 403
    assert admin_client.get(f"/admin/django_celery_results/taskresult/{result.pk}/delete/").status_code == 403
    assert detail.context["has_change_permission"] is False
    assert "Traceback: boom" in detail.content.decode()


def test_users_and_groups_use_the_console_forms(admin_client, staff):
    assert admin_client.get("/admin/auth/user/").status_code == 200
    assert admin_client.get(f"/admin/auth/user/{staff.pk}/change/").status_code == 200
    assert admin_client.get("/admin/auth/group/add/").status_code == 200


def test_the_message_events_list_who_did_what(admin_client, staff, sqs):
    from sqs_app.services import message_send
    from tests.helpers import notification

    message_send(queue="notifications", message=notification(), sent_by=staff)
    response = admin_client.get("/admin/sqs_app/messageevent/", {"kind__exact": "sent"})

    assert response.status_code == 200
    [event] = response.context["cl"].result_list
    assert event.actor == "admin"


def test_a_groups_queue_grants_are_set_on_its_page(admin_client):
    from django.contrib.auth.models import Group

    from sqs_app.models import QueueGrant

    group = Group.objects.create(name="Notifiers")
    page = admin_client.get(f"/admin/auth/group/{group.pk}/change/")
    assert page.status_code == 200 and "queue_grants-TOTAL_FORMS" in page.content.decode()

    response = admin_client.post(
        f"/admin/auth/group/{group.pk}/change/",
        {
            "name": "Notifiers",
            "queue_grants-TOTAL_FORMS": "1",
            "queue_grants-INITIAL_FORMS": "0",
            "queue_grants-0-queue": "notifications",
            "queue_grants-0-group": group.pk,
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    assert list(QueueGrant.objects.values_list("group__name", "queue")) == [("Notifiers", "notifications")]


def test_the_token_pages_use_the_console(admin_client):
    from unfold.admin import ModelAdmin

    for model in ("outstandingtoken", "blacklistedtoken"):
        response = admin_client.get(f"/admin/token_blacklist/{model}/")
        assert response.status_code == 200
        assert isinstance(response.context["cl"].model_admin, ModelAdmin)
    # Outstanding tokens are simplejwt's record of what it issued: read only, as simplejwt has it.
    assert admin_client.get("/admin/token_blacklist/outstandingtoken/add/").status_code == 403
