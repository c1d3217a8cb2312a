"""Rate limits on compile and query, per user (whichever token or session they come with),
from settings; the same budget for the API, the UI's Explore/CSV, chart slicing and trace
rows, so neither minting more tokens nor switching to the UI buys more."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from tally.errors import UserError

log = logging.getLogger(__name__)

MSG_RATE_LIMITED = "too many {scope} requests: the limit is {rate} per user"


class RateLimited(UserError):
    """Over the per-user rate of a scope (HTTP 429)."""

    http_status = 429
    default_code = "rate_limited"


class ActionRateThrottle(SimpleRateThrottle):
    """Applies to views with a ``throttle_scope`` listed in TALLY_RATE_LIMITS.

    Rates are read per request (not once at import like DRF's THROTTLE_RATES), so an
    environment change or a test's settings override takes effect. Counters live in the
    default cache: Redis (TALLY_CACHE_URL) shares them across web processes. While that
    cache cannot be reached (Redis restarting) requests are let through and a warning is
    logged: a budget of reads is not worth failing every query for (the soak's 500s).
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
        try:
            return super().allow_request(request, view)
        except (RedisError, OSError) as exc:
            log.warning("rate limit store unreachable, %s request let through: %s", self.scope, exc)
            return True

    def get_cache_key(self, request: Request | HttpRequest, view: Any) -> str:
        # Per user, never per token: each token a user mints would otherwise be a new budget.
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            ident = f"user:{user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class _Scoped:
    def __init__(self, scope: str) -> None:
        self.throttle_scope = scope


def rate_limit_check(request: HttpRequest | Request, scope: str) -> None:
    """Counts one ``scope`` request for the request's user (the UI's pages that query, and
    API endpoints that query only with some parameters); raises RateLimited past the rate."""
    throttle = ActionRateThrottle()
    if throttle.allow_request(request, _Scoped(scope)):  # type: ignore[arg-type]
        return
    wait = throttle.wait()
    raise RateLimited(
        MSG_RATE_LIMITED.format(scope=scope, rate=throttle.rate),
        hint=f"wait {int(wait or 1) + 1} s and try again; the limits are TALLY_RATE_QUERY and "
        "TALLY_RATE_COMPILE",
    )


@dataclass(frozen=True)
class _UserOnly:
    # What the throttle reads of a request when its user is authenticated.
    user: Any


def rate_limit_check_user(user: Any, scope: str) -> None:
    """Counts one ``scope`` request for ``user`` outside HTTP (the SQL API), under the same
    key as the user's HTTP requests; raises RateLimited past the rate."""
    rate_limit_check(_UserOnly(user), scope)  # type: ignore[arg-type]
