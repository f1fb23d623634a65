"""Outbound HTTP policy from settings, shared by polling and webhooks."""

from django.conf import settings

from .outbound import OutboundPolicy


def outbound_policy() -> OutboundPolicy:
    return OutboundPolicy(
        allow_private_networks=settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS,
        timeout_seconds=settings.OUTBOUND_TIMEOUT_SECONDS,
        max_response_bytes=settings.OUTBOUND_MAX_RESPONSE_BYTES,
    )
