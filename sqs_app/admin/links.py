"""Links between the console's pages: from a figure to the messages it counts, from a row to its object."""

from datetime import timedelta
from urllib.parse import urlencode

from django.urls import reverse
from django.utils.html import format_html

from .. import selectors


def messages_url(**filters) -> str:
    return reverse("admin:sqs_app_message_changelist") + ("?" + urlencode(filters) if filters else "")


def oldest_url(queue: str, *, age_seconds: int, now) -> str:
    """The queue's open messages created no later than its oldest (the age is rounded: a second's margin)."""
    cutoff = (now - timedelta(seconds=age_seconds - 1)).isoformat(timespec="seconds")
    return messages_url(
        queue__exact=queue, status__in=",".join(selectors.OPEN_STATUSES), created_at__lt=cutoff
    )


def change_link(url_name: str, pk, text) -> str:
    """A link to an object's admin page (`url_name`: "admin:<app>_<model>_change"); "-" when `pk` is None."""
    if pk is None:
        return "-"
    return format_html('<a href="{}">{}</a>', reverse(url_name, args=[pk]), text)
