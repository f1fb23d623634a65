"""The sidebar (UNFOLD["SIDEBAR"]["navigation"]): the operator's pages, in the order they use them.

"Dead letters" leads to the dead-letter queues' own pages (sqs_app/admin/dead_letters.py).
Entries whose own page is still to come point at the nearest existing one:
- "Audit log": the message events (who did what, when), until the audit
  log's own admin is registered;
- "Recurring polls": the poll schedules (each links to its django-celery-beat task).
"""

from django.urls import NoReverseMatch, reverse


def _first_url(*names: str, query: str = "") -> str | None:
    for name in names:
        try:
            return reverse(name) + query
        except NoReverseMatch:
            continue
    return None


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
            _first_url(
                "admin:django_celery_beat_periodictask_changelist", "admin:tasks_app_pollschedule_changelist"
            ),
            None,
        ),
        (
            "Task results",
            "task_alt",
            _first_url("admin:django_celery_results_taskresult_changelist"),
            _can_view("django_celery_results.taskresult"),
        ),
        (
            "Audit log",
            "history",
            reverse("admin:sqs_app_messageevent_changelist"),
            _can_view("sqs_app.messageevent"),
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


def _audit_log() -> tuple:
    """The audit log's own page once it is registered (sqs_app.admin_audit), else the message events."""
    try:
        return (
            "Audit log",
            "history",
            reverse("admin:sqs_app_auditentry_changelist"),
            _can_view("sqs_app.auditentry"),
        )
    except NoReverseMatch:
        return (
            "Audit log",
            "history",
            reverse("admin:sqs_app_messageevent_changelist"),
            _can_view("sqs_app.messageevent"),
        )


def _items(entries) -> list[dict]:
    items = []
    for title, icon, link, permission, *active in entries:
        if link is None:
            continue
        item = {"title": title, "icon": icon, "link": link}
        if active:
            item["active"] = active[0]
        if permission is not None:
            item["permission"] = permission
        items.append(item)
    return items
