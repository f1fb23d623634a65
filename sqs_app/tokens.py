"""Refresh tokens end with the password that earned them, and with the account.

When a user's password changes or the user is deactivated, every refresh
token issued to them is blacklisted (simplejwt's token_blacklist keeps an
OutstandingToken row for each). Access tokens are short-lived and checked by
the authentication class; this covers the long-lived refresh tokens.
"""

from django.db.models.signals import post_save, pre_save
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken


def tokens_revoke(*, user) -> int:
    """Blacklist every refresh token of `user` that is not yet blacklisted. Returns how many."""
    outstanding = OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True)
    revoked = BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in outstanding], ignore_conflicts=True
    )
    return len(revoked)


def _note_credential_change(sender, instance, update_fields=None, **kwargs):
    if instance.pk is None or (
        update_fields is not None and not {"password", "is_active"} & set(update_fields)
    ):
        return  # a new user, or a save of other fields (last_login at every login)
    before = sender.objects.filter(pk=instance.pk).values("password", "is_active").first()
    instance._wipsie_revoke_tokens = before is not None and (
        before["password"] != instance.password or (before["is_active"] and not instance.is_active)
    )


def _revoke_after_change(sender, instance, **kwargs):
    if getattr(instance, "_wipsie_revoke_tokens", False):
        instance._wipsie_revoke_tokens = False
        tokens_revoke(user=instance)


def connect(user_model) -> None:
    pre_save.connect(_note_credential_change, sender=user_model, dispatch_uid="wipsie-note-credential-change")
    post_save.connect(_revoke_after_change, sender=user_model, dispatch_uid="wipsie-revoke-tokens")
