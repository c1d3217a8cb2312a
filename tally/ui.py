"""Web UI plumbing shared by every app's views: error pages for TallyError, htmx helpers, nav."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tally.errors import NotFound, PermissionDenied, TallyError, UserError, error_body

logger = logging.getLogger("tally.ui")

# Top navigation: (url name, label, the path prefix that marks it current).
NAV = (
    ("catalog", "Catalog", "/metrics"),
    ("explore", "Explore", "/explore"),
    ("proposal-list", "Proposals", "/proposals"),
    ("contract-list", "Contracts", "/contracts"),
    ("lineage", "Lineage", "/lineage"),
    ("run-list", "Runs", "/runs"),
    ("audit-list", "Audits", "/audits"),
)


def is_htmx(request: HttpRequest) -> bool:
    """True for a request htmx sent (it wants a fragment, not a whole page)."""
    return request.headers.get("HX-Request") == "true"


def flash_error(request: HttpRequest, exc: UserError) -> None:
    """A UserError as a message on the next page: its text and hint."""
    hint = f" — {exc.hint}" if exc.hint else ""
    messages.error(request, f"{exc.message}{hint}")


def flash_form_errors(request: HttpRequest, *forms: Any, strip: str = "") -> None:
    """Each invalid field of ``forms`` as a message (``field: errors``), the field named
    without ``strip`` (a prefix a form uses to keep its names apart)."""
    for form in forms:
        for field, errors in form.errors.items():
            messages.error(request, f"{field.removeprefix(strip)}: {' '.join(errors)}")


def navigation(request: HttpRequest) -> dict[str, Any]:
    """Template context: the navigation entries, the current one marked."""
    path = request.path
    return {
        "nav": [
            {"url": url, "label": label, "current": path.startswith(prefix)}
            for url, label, prefix in NAV
        ]
    }


def page_access(
    action: str,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """A page needs ``action`` (the one its API endpoint needs): else the 403 page with who,
    what and why. A refusal is audited (``access.denied``), as the API's are. Goes under
    ``@login_required``, so a signed-out visitor is sent to sign in first."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            # Imported here: tally is imported by every app, the registry comes later.
            from registry.permissions import page_require

            page_require(request, action)
            return view(request, *args, **kwargs)

        setattr(wrapped, "tally_access", action)  # noqa: B010 (read by the access test)
        return wrapped

    return decorate


def error_page(
    request: HttpRequest, error: TallyError, *, status: int | None = None
) -> HttpResponse:
    """Renders a TallyError as a page (a fragment for htmx) with its message and hint."""
    status = status or error.http_status
    template = "errors/_message.html" if is_htmx(request) else "errors/error.html"
    # One renderer for every page: the warehouse's own text only for administrators.
    body = error_body(error, request=request)
    title = {403: "Not allowed", 404: "Not found"}.get(status, "Something is wrong")
    return render(
        request, template, {"error": body, "title": title, "status": status}, status=status
    )


class UserErrorPageMiddleware:
    """A TallyError escaping a UI view is a page with its status (404, 403, 400, 409),
    never a 500; the API (/api/) keeps its own JSON handler."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if request.path.startswith("/api/") or not isinstance(exc, TallyError):
            return None
        if not isinstance(exc, UserError):
            logger.error("internal error %s: %s", exc.code, exc.message, exc_info=exc)
            return error_page(request, exc, status=500)
        if isinstance(exc, NotFound | PermissionDenied):
            return error_page(request, exc)
        # A 502 from the warehouse is still the user's page to read, not a crash.
        return error_page(request, exc, status=exc.http_status)
