"""The sidebar (UNFOLD["SIDEBAR"]["navigation"]): the operator's pages, in the order they use them.

Each entry is shown to whoever may view what it opens (Django's view permission
of its model; "Send" asks for the send permission). "Dead letters" leads to the
dead-letter queues' own pages (sqs_app/admin/dead_letters.py).
"""

from django.urls import reverse


def _can_view(model_label: str):
    app_label, model = model_label.split(".")

    def check(request) -> bool:
        return request.user.has_perm(f"{app_label}.view_{model}")

    return check


def _is_dead_letters(request) -> bool:
    return request.path.startswith(reverse("admin:sqs_app_message_dead_letters"))


def _is_messages(request) -> bool:
    path = reverse("admin:sqs_app_message_changelist")
    return (
        request.path == path
        and "status__in" not in request.GET
        or (request.path.startswith(path) and request.path.endswith("/change/"))
    )


def sidebar(request) -> list[dict]:
    messages = [
        ("Dashboard", "dashboard", reverse("admin:index"), None),
        ("Queues", "stacks", reverse("admin:sqs_app_message_queues"), _can_view("sqs_app.message")),
        (
            "Messages",
            "mail",
            reverse("admin:sqs_app_message_changelist"),
            _can_view("sqs_app.message"),
            _is_messages,
        ),
        (
            "Dead letters",
            "skull",
            reverse("admin:sqs_app_message_dead_letters"),
            _can_view("sqs_app.message"),
            _is_dead_letters,
        ),
        (
            "Send",
            "send",
            reverse("admin:sqs_app_message_send"),
            lambda r: r.user.has_perm("sqs_app.send_message"),
        ),
    ]
    work = [
        (
            "Recurring polls",
            "schedule",
            reverse("admin:tasks_app_pollschedule_changelist"),
            _can_view("tasks_app.pollschedule"),
        ),
        (
            "Operator runs",
            "pending_actions",
            reverse("admin:sqs_app_operatorrun_changelist"),
            _can_view("sqs_app.message"),
        ),
        (
            "Task results",
            "task_alt",
            reverse("admin:django_celery_results_taskresult_changelist"),
            _can_view("django_celery_results.taskresult"),
        ),
        (
            "Audit log",
            "history",
            reverse("admin:sqs_app_auditentry_changelist"),
            _can_view("sqs_app.auditentry"),
        ),
    ]
    people = [
        ("Users", "person", reverse("admin:auth_user_changelist"), _can_view("auth.user")),
        ("Groups", "group", reverse("admin:auth_group_changelist"), _can_view("auth.group")),
    ]
    return [
        {"title": "Messages", "separator": False, "items": _items(messages)},
        {"title": "Work", "separator": True, "items": _items(work)},
        {"title": "Users and groups", "separator": True, "items": _items(people)},
    ]


def _items(entries) -> list[dict]:
    items = []
    for title, icon, link, permission, *active in entries:
        item = {"title": title, "icon": icon, "link": link}
        if active:
            item["active"] = active[0]
        if permission is not None:
            item["permission"] = permission
        items.append(item)
    return items
