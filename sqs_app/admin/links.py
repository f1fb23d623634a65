"""Links from a figure to the message list filtered to exactly the messages it counts."""

from datetime import timedelta
from urllib.parse import urlencode

from django.urls import reverse

from .. import selectors


def messages_url(**filters) -> str:
    return reverse("admin:sqs_app_message_changelist") + ("?" + urlencode(filters) if filters else "")


def oldest_url(queue: str, *, age_seconds: int, now) -> str:
    """The queue's open messages created no later than its oldest (the age is rounded: a second's margin)."""
    cutoff = (now - timedelta(seconds=age_seconds - 1)).isoformat(timespec="seconds")
    return messages_url(
        queue__exact=queue, status__in=",".join(selectors.OPEN_STATUSES), created_at__lt=cutoff
    )
