from __future__ import annotations

import hmac
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from registry.forms import LOGIN_LOCKED, SignInForm
from registry.permissions import request_is_admin
from tally.health import health_check_all, run_state_metrics
from tally.metrics import metrics_exposition

METRICS_DENIED = "metrics need TALLY_METRICS_TOKEN as a Bearer token, or an admin session"


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    results = health_check_all()
    ok = all(r.ok for r in results)
    # Details name the warehouse's path, user and host and the errors' texts: only for
    # signed-in admins; the public probe (load balancers, uptime checks) gets ok/fail.
    admin = request_is_admin(request)
    body = {
        "status": "ok" if ok else "fail",
        "checks": {
            r.name: {
                "ok": r.ok,
                "latency_ms": r.latency_ms,
                **({"detail": r.detail} if admin else {}),
            }
            for r in results
        },
    }
    return JsonResponse(body, status=200 if ok else 503)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition: a scraper with TALLY_METRICS_TOKEN, or a signed-in admin."""
    offered = request.META.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer ").strip()
    expected = settings.TALLY_METRICS_TOKEN
    allowed = (bool(expected) and hmac.compare_digest(offered, expected)) or request_is_admin(
        request
    )
    if not allowed:
        return JsonResponse(
            {"error": {"code": "permission_denied", "message": METRICS_DENIED, "hint": None,
                       "location": None, "details": None}},
            status=403,
        )  # fmt: skip
    return HttpResponse(metrics_exposition(run_state_metrics()), content_type=CONTENT_TYPE_LATEST)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    # The catalog is the front page; signing in comes first (login_required there).
    return redirect("catalog")


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "403.html", status=403)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        body = {"error": {"code": "not_found", "message": f"no such endpoint: {request.path}",
                          "hint": "see /api/docs/", "location": None, "details": None}}  # fmt: skip
        return JsonResponse(body, status=404)
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    # No context processors beyond the request: the failure may be in one of them.
    return render(request, "500.html", status=500)


def login_locked_status(response: HttpResponse) -> HttpResponse:
    """A sign-in page refused because the account or address is locked answers 429."""
    form = (getattr(response, "context_data", None) or {}).get("form")
    if form is not None and form.has_error(NON_FIELD_ERRORS, LOGIN_LOCKED):
        response.status_code = 429
    return response


class SignInView(auth_views.LoginView):
    form_class = SignInForm
    redirect_authenticated_user = True

    def form_invalid(self, form: Any) -> HttpResponse:
        return login_locked_status(super().form_invalid(form))


def admin_login(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
    # /admin/login/ with the throttled form (admin.site.login_form, set in tally/urls.py).
    return login_locked_status(admin.site.login(request, extra_context))
