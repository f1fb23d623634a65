"""JWT authentication without a user query on every request.

simplejwt's `JWTAuthentication` loads the user from the database for every
request: one `SELECT auth_user` per send, a fifth of a send's statements.
`CachedUserJWTAuthentication` keeps the user in Django's cache for at most
`AUTH_USER_CACHE_SECONDS` (60 s, never more) and checks every token against
the cached copy exactly as simplejwt checks it against the database row.

What this means for revocation (also in README.md, "Authentication"):

- Access tokens carry a hash of the user's password hash (simplejwt's
  `CHECK_REVOKE_TOKEN`): after a password change they no longer match the user.
- A password change or a deactivation saved through the ORM (the admin,
  `changepassword`, `user.save()`) drops the cached user at once, through the
  `post_save` signal below, in the process that saved it; with a shared cache
  (`CACHE_URL=redis://...`) in every process at once. With the default
  per-process cache, every other process still holds its copy for at most
  `AUTH_USER_CACHE_SECONDS`, and refuses the token as soon as the copy expires.
- A bulk `QuerySet.update()` sends no signal: the copies expire within the
  same bound.

So a password change or a deactivation refuses that user's existing access
tokens within 60 s in every process.

A client sends the same token with every request, and checking its signature
and claims costs more than a send's own database write. So a token that passed
is remembered, by its exact bytes, until it expires or for
AUTH_USER_CACHE_SECONDS, whichever is sooner: the same bytes always verify
the same way, and expiry is checked again on every use. The user behind it is
still looked up (in the user cache) and checked on every request.
"""

import threading
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext_lazy as _
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.utils import get_md5_hash_password


def user_cache_key(user_id) -> str:
    return f"wipsie:auth-user:{user_id}"


# Raw token -> (valid until, validated token), for this process. Bounded: a
# flood of distinct tokens only empties it, it never grows without limit.
_validated_tokens: dict[bytes, tuple[float, object]] = {}
_validated_tokens_lock = threading.Lock()
VALIDATED_TOKENS_MAX = 10_000


class CachedUserJWTAuthentication(JWTAuthentication):
    """simplejwt's bearer authentication, with the user from a short-lived cache."""

    def get_validated_token(self, raw_token: bytes):
        now = time.time()
        remembered = _validated_tokens.get(raw_token)
        if remembered is not None and now < remembered[0]:
            return remembered[1]
        token = super().get_validated_token(raw_token)  # raises for a bad or expired token
        until = min(float(token.get("exp", now)), now + settings.AUTH_USER_CACHE_SECONDS)
        with _validated_tokens_lock:
            if len(_validated_tokens) >= VALIDATED_TOKENS_MAX:
                _validated_tokens.clear()
            _validated_tokens[raw_token] = (until, token)
        return token

    def get_user(self, validated_token):
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError as exc:
            raise InvalidToken(_("Token contained no recognizable user identification")) from exc
        key = user_cache_key(user_id)
        user = cache.get(key)
        if user is None:
            # simplejwt's own lookup and checks (active, password unchanged); a
            # refused user is never cached, so a refusal always reads the database.
            user = super().get_user(validated_token)
            cache.set(key, user, timeout=settings.AUTH_USER_CACHE_SECONDS)
            return user
        self._check(user, validated_token)
        return user

    @staticmethod
    def _check(user, validated_token) -> None:
        """What simplejwt checks against the database row, against the cached copy."""
        if api_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
            raise AuthenticationFailed(_("User is inactive"), code="user_inactive")
        if api_settings.CHECK_REVOKE_TOKEN and validated_token.get(
            api_settings.REVOKE_TOKEN_CLAIM
        ) != get_md5_hash_password(user.password):
            raise AuthenticationFailed(_("The user's password has been changed."), code="password_changed")


class CachedUserJWTScheme(SimpleJWTScheme):
    """The OpenAPI document describes it as the bearer JWT it is."""

    target_class = CachedUserJWTAuthentication


def forget_cached_user(sender, instance, **kwargs) -> None:
    """A saved or deleted user is read from the database on their next request."""
    cache.delete(user_cache_key(instance.pk))


def connect_signals() -> None:
    """Called from SqsAppConfig.ready(), so that every process (web, worker, command) drops its copy."""
    user_model = get_user_model()
    post_save.connect(forget_cached_user, sender=user_model, dispatch_uid="wipsie-forget-cached-user")
    post_delete.connect(forget_cached_user, sender=user_model, dispatch_uid="wipsie-forget-deleted-user")
