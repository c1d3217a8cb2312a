from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from tally.health import health_check_all


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    results = health_check_all()
    ok = all(r.ok for r in results)
    body = {
        "status": "ok" if ok else "fail",
        "checks": {
            r.name: {"ok": r.ok, "detail": r.detail, "latency_ms": r.latency_ms} for r in results
        },
    }
    return JsonResponse(body, status=200 if ok else 503)


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
