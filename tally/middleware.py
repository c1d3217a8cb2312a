"""Request hardening: body size limit, security headers, the per-request access context."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from registry.services.audit import access_context_bind, access_context_reset
from tally.errors import UserError

TOO_LARGE = "the request body is {size} bytes; the limit is {limit}"

Handler = Callable[[HttpRequest], HttpResponse]


class BodySizeLimitMiddleware:
    """413 for a declared body over TALLY_MAX_BODY_BYTES, before anything reads it.

    DRF parses JSON from the stream, past Django's DATA_UPLOAD_MAX_MEMORY_SIZE check (that
    guards only request.body and forms), so the limit is enforced here on Content-Length;
    Django's LimitedStream never reads past the declared length.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = int(settings.TALLY_MAX_BODY_BYTES)
        raw = request.META.get("CONTENT_LENGTH") or "0"
        try:
            size = int(raw)
        except ValueError:
            size = -1
        if size < 0 or size > limit:
            error = UserError(
                TOO_LARGE.format(size=raw, limit=limit),
                code="request_too_large",
                hint="split the change into several requests, or raise TALLY_MAX_BODY_BYTES",
            )
            return JsonResponse({"error": error.as_body()}, status=413)
        return self.get_response(request)


class SecurityHeadersMiddleware:
    """Content-Security-Policy and Permissions-Policy on every response (Django 5.2 has no
    CSP of its own; SecurityMiddleware sets nosniff, referrer and opener policies)."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.TALLY_CSP)
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"
        )
        return response


class AccessContextMiddleware:
    """Binds the client address for audit rows, and clears the token/principal afterwards
    (a worker thread serves many requests; one request's token must not leak into the next)."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = access_context_bind(
            token=None, principal=None, ip=request.META.get("REMOTE_ADDR") or None
        )
        try:
            return self.get_response(request)
        finally:
            access_context_reset(token)
