"""Rate limits on compile and query, per API token (else per user), from settings."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle


class ActionRateThrottle(SimpleRateThrottle):
    """Applies to views with a ``throttle_scope`` listed in TALLY_RATE_LIMITS.

    Rates are read per request (not once at import like DRF's THROTTLE_RATES), so an
    environment change or a test's settings override takes effect. Counters live in the
    default cache: Redis (TALLY_CACHE_URL) shares them across web processes.
    """

    cache_format = "tally-throttle:%(scope)s:%(ident)s"

    def __init__(self) -> None:
        # SimpleRateThrottle reads the rate in __init__; ours depends on the view.
        pass

    def allow_request(self, request: Request, view: Any) -> bool:
        self.scope = getattr(view, "throttle_scope", None) or ""
        rate = dict(settings.TALLY_RATE_LIMITS).get(self.scope)
        if not rate:
            return True
        self.rate = rate
        self.num_requests, self.duration = self.parse_rate(rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: Any) -> str:
        auth = request.auth
        if auth is not None and hasattr(auth, "prefix"):
            ident = f"token:{auth.prefix}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
