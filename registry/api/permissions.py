"""DRF permissions: every view declares the action each method needs; default deny.

``ActionPermission`` is the project's DEFAULT_PERMISSION_CLASSES: a view without an
``access`` map (method → Action, or SIGNED_IN) is refused for everyone, so a new endpoint
cannot ship open by accident (tests/registry/api/test_access_declared.py walks every URL).
"""

from __future__ import annotations

from typing import Any

from rest_framework import permissions
from rest_framework.request import Request

from registry.models import ApiToken
from registry.permissions import access_require_audited
from registry.roles import Action
from tally.errors import PermissionDenied

# Any signed-in user or token, whatever their roles (e.g. /me, one's own tokens).
SIGNED_IN = "signed_in"
UNDECLARED = "endpoint {name} declares no permission for {method}; it is refused by default"


def request_token(request: Request) -> ApiToken | None:
    """The API token a request authenticated with (None for a session)."""
    return request.auth if isinstance(request.auth, ApiToken) else None


def declared_access(view: Any, method: str) -> Action | str | None:
    """What ``view`` declares for ``method`` (HEAD follows GET, OPTIONS needs sign-in)."""
    access = getattr(view, "access", None) or {}
    method = method.upper()
    if method == "HEAD":
        method = "GET"
    if method == "OPTIONS":
        return SIGNED_IN if access else None
    value = access.get(method)
    return value if value is None or value == SIGNED_IN else Action(value)


class ActionPermission(permissions.BasePermission):
    """Authenticated, and allowed the action the view declares for this method."""

    def has_permission(self, request: Request, view: Any) -> bool:
        needed = declared_access(view, request.method or "GET")
        if needed is None:
            raise PermissionDenied(
                UNDECLARED.format(name=type(view).__name__, method=request.method),
                code="undeclared_permission",
                hint="declare `access = {METHOD: Action…}` on the view",
            )
        if not (request.user and request.user.is_authenticated):
            return False  # DRF answers 401 (the bearer authenticator sends WWW-Authenticate)
        if needed != SIGNED_IN:
            _checked(request, needed)
        return True


def require(request: Request, action: Action, obj: Any = None) -> None:
    """Object-level check inside a view (e.g. merge needs merge in the proposal's domains)."""
    _checked(request, action, obj)


def _checked(request: Request, action: Action, obj: Any = None) -> None:
    access_require_audited(
        request.user,
        action,
        kind="endpoint",
        where=f"{request.method} {request.path}",
        obj=obj,
        token=request_token(request),
    )
