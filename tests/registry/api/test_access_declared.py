"""Default deny: every API view declares the action each of its methods needs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from registry.api.permissions import SIGNED_IN, ActionPermission
from registry.roles import Action

# Views that are public on purpose: the OpenAPI schema and its docs page.
PUBLIC = {"SpectacularAPIView", "SpectacularSwaggerSplitView"}
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def api_views() -> list[tuple[str, type[APIView]]]:
    """(route, class) of every DRF view the URLconf routes to."""
    out = []
    for route, callback in _walk(get_resolver().url_patterns):
        cls = getattr(callback, "cls", None)
        if isinstance(cls, type) and issubclass(cls, APIView):
            out.append((route, cls))
    return out


def test_the_walk_finds_the_api() -> None:
    """Guards the guard: the walk sees the views (an empty walk would pass anything)."""
    names = {cls.__name__ for _, cls in api_views()}
    assert {"CompileApi", "QueryApi", "TokenListApi", "AuditLogApi", "ProposalMergeApi"} <= names
    assert len(names) > 30


@pytest.mark.parametrize(
    ("route", "cls"), api_views(), ids=[f"{c.__name__}:{r}" for r, c in api_views()]
)
def test_every_api_view_declares_a_permission_for_each_method(route: str, cls: type) -> None:
    """A view on the default permission class names an Action (or SIGNED_IN) per method;
    anything else must be one of the deliberately public views."""
    if cls.__name__ in PUBLIC:
        assert cls.permission_classes == [AllowAny]
        return
    assert cls.permission_classes == [ActionPermission], f"{cls.__name__} overrides permissions"
    access = getattr(cls, "access", None) or {}
    methods = [m.upper() for m in HTTP_METHODS if hasattr(cls, m)]
    assert methods, route
    for method in methods:
        declared = access.get(method)
        assert declared == SIGNED_IN or isinstance(declared, Action), (
            f"{cls.__name__}.{method.lower()} ({route}) declares no permission"
        )


class _Undeclared(APIView):
    def get(self, request: Request) -> Response:
        return Response({"secret": True})


@pytest.mark.django_db
def test_a_view_without_a_declaration_is_refused_even_for_an_admin(
    django_user_model: Any,
) -> None:
    """The default permission class refuses undeclared views, whoever asks."""
    admin = django_user_model.objects.create_superuser("root", password="x" * 12)
    request = APIRequestFactory().get("/x")
    force_authenticate(request, user=admin)
    response = _Undeclared.as_view()(request)
    assert response.status_code == 403
    assert response.data["error"]["code"] == "undeclared_permission"
    assert "_Undeclared" in response.data["error"]["message"]
