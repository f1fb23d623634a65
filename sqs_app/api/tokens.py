"""The JWT endpoints: simplejwt's views, with their errors documented and refresh hardened.

- `POST /api/token/`: username and password -> an access and a refresh token.
- `POST /api/token/refresh/`: a refresh token -> a new access token and a new
  refresh token; the one given is blacklisted (ROTATE_REFRESH_TOKENS,
  BLACKLIST_AFTER_ROTATION), so each refresh token works once.
- `POST /api/token/logout/`: blacklists a refresh token.

A password change or a deactivation blacklists the user's refresh tokens
(sqs_app.tokens).
"""

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt import serializers as jwt_serializers
from rest_framework_simplejwt import views as jwt_views

from .views import error_responses

# Malformed JSON 400, bad credentials or token 401, wrong media type 415,
# missing fields 422, anonymous throttling 429.
TOKEN_ERRORS = error_responses(400, 401, 415, 422, 429, 500)


class TokenPairResponseSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class LogoutRequestSerializer(serializers.Serializer):
    refresh = serializers.CharField()


class LogoutResponseSerializer(serializers.Serializer):
    """An empty object: the refresh token is blacklisted."""


class TokenRefreshSerializer(jwt_serializers.TokenRefreshSerializer):
    def validate(self, attrs):
        try:
            return super().validate(attrs)
        except get_user_model().DoesNotExist as exc:
            # The user was deleted: the token is simply no good (simplejwt lets this be a 500).
            raise AuthenticationFailed(self.error_messages["no_active_account"], "no_active_account") from exc


class TokenObtainPairView(jwt_views.TokenObtainPairView):
    @extend_schema(
        summary="Obtain an access and a refresh token",
        responses={200: TokenPairResponseSerializer, **TOKEN_ERRORS},
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class TokenRefreshView(jwt_views.TokenRefreshView):
    serializer_class = TokenRefreshSerializer

    @extend_schema(
        summary="Exchange a refresh token for new tokens (the old refresh token stops working)",
        responses={200: TokenPairResponseSerializer, **TOKEN_ERRORS},
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class TokenLogoutView(jwt_views.TokenBlacklistView):
    @extend_schema(
        summary="Log out: blacklist a refresh token",
        request=LogoutRequestSerializer,
        responses={200: LogoutResponseSerializer, **TOKEN_ERRORS},
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)
