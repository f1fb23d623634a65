from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from sqs_app.api.tokens import TokenLogoutView, TokenObtainPairView, TokenRefreshView
from sqs_app.api.views import HealthView, LivenessView, ReadinessView
from sqs_app.metrics_views import metrics

urlpatterns = [
    path("sqs/", include("sqs_app.api.urls")),
    path("sqs/", include("tasks_app.api.urls")),
    path("health", HealthView.as_view(), name="health"),
    path("health/live", LivenessView.as_view(), name="health-live"),
    path("health/ready", ReadinessView.as_view(), name="health-ready"),
    path("api/token/", TokenObtainPairView.as_view(), name="token-obtain"),
    path("api/token/refresh/", TokenRefreshView.as_view(), name="token-refresh"),
    path("api/token/logout/", TokenLogoutView.as_view(), name="token-logout"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("admin/", admin.site.urls),
    path("metrics", metrics, name="metrics"),
]

# Errors Django raises outside the API views get the same envelope.
handler400 = "sqs_app.error_views.bad_request"
handler403 = "sqs_app.error_views.permission_denied"
handler404 = "sqs_app.error_views.page_not_found"
handler500 = "sqs_app.error_views.server_error"
