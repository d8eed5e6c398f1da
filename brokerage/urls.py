from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core.health import ReadinessView, liveness_view
from core.metrics import metrics_view

api_v1 = [
    path("", include("accounts.urls")),
    path("", include("trading.urls")),
    path("", include("ledger.urls")),
    path("", include("events.urls")),
    path("", include("compliance.reports.urls_api")),
]

urlpatterns = [
    path("healthz", liveness_view, name="healthz"),
    path("readyz", ReadinessView.as_view(), name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/reports/", include("compliance.reports.urls_staff")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI from drf-spectacular-sidecar's pinned files on this origin; its start-up script is a separate
    # request (?script), so the page runs under the Content-Security-Policy without inline scripts.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    # Client users: the one-time set-password link of onboarding, and signing in to the browsable API.
    path("account/", include("accounts.urls_web")),
    path("api-auth/", include("rest_framework.urls")),
]

handler400 = "core.api.errors.bad_request"
handler404 = "core.api.errors.not_found"
handler500 = "core.api.errors.server_error"
