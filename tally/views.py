from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
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
    return render(request, "home.html", {"warehouse": settings.WAREHOUSE.display_url})
