"""Request hardening: body size limit, security headers, the per-request access context,
and request ids, latency metrics and JSON 500s (RequestContextMiddleware)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from registry.services.audit import access_context_bind, access_context_reset
from tally.errors import UserError
from tally.logs import new_request_id, request_id_bind, request_id_reset
from tally.metrics import REQUEST_SECONDS

request_logger = logging.getLogger("tally.request")
SERVER_ERROR_MESSAGE = "the server failed to answer this request (request id {request_id})"

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


class RequestContextMiddleware:
    """First in the chain: gives every request an id (the client's X-Request-ID when it is a
    safe token), which every log line of the request carries and the response echoes; times
    the request for /ops/metrics; and turns an unhandled exception on an API path into the JSON
    error shape, logged with its traceback (Django would answer an HTML page and, with DEBUG
    off, log nothing a JSON log reader sees)."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = new_request_id(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_bind(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
        finally:
            request_id_reset(token)
        match = getattr(request, "resolver_match", None)
        route = (match.route or match.view_name) if match is not None else "unmatched"
        REQUEST_SECONDS.labels(request.method, route, f"{response.status_code // 100}xx").observe(
            time.perf_counter() - started
        )
        response["X-Request-ID"] = request_id
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        request_id = getattr(request, "request_id", "")
        request_logger.error(
            "unhandled %s on %s %s", type(exception).__name__, request.method, request.path,
            exc_info=exception, extra={"path": request.path, "status": 500},
        )  # fmt: skip
        if not request.path.startswith("/api/"):
            return None  # the UI's 500 page
        body = {
            "error": {
                "code": "internal_error",
                "message": SERVER_ERROR_MESSAGE.format(request_id=request_id),
                "hint": "retry later; quote the request id to the operator",
                "location": None,
                "details": {"request_id": request_id},
            }
        }
        return JsonResponse(body, status=500)
