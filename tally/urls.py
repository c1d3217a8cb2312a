from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from registry.forms import AdminSignInForm
from tally import views

api_v1 = [
    path("", include("semantic.api.urls")),
    path("", include("registry.api.urls")),
    path("", include("lineage.api.urls")),
]

# Throttled, audited password sign-in on /admin/ too (registry/services/logins.py).
admin.site.login_form = AdminSignInForm

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    # Prometheus text; /metrics is the catalog.
    path("ops/metrics", views.metrics, name="metrics"),
    path("accounts/login/", views.SignInView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Before admin.site.urls: the same path, answered 429 while sign-in is locked.
    path("admin/login/", views.admin_login),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its init script as a file: the CSP allows no inline scripts.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    # The web UI (Django templates + htmx); each app's pages are in its urls.py.
    path("", include("registry.urls")),
    path("", include("semantic.urls")),
    path("", include("lineage.urls")),
]

handler403 = "tally.views.forbidden"
handler404 = "tally.views.not_found"
handler500 = "tally.views.server_error"
