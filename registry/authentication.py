"""DRF authentication by API token: ``Authorization: Bearer tly_<prefix>_<secret>``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from registry.models import ApiToken
from registry.services.access import TokenInvalid, token_authenticate


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """request.user = the token's user (or service account), request.auth = the ApiToken.

    Listed first in DEFAULT_AUTHENTICATION_CLASSES, so an anonymous API call gets
    401 with ``WWW-Authenticate: Bearer`` rather than 403.
    """

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "malformed Authorization header (expected: Bearer <token>)"
            )
        try:
            raw = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("the token is not ASCII") from None
        try:
            token = token_authenticate(raw)
        except TokenInvalid as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="tally"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """The OpenAPI security scheme of the bearer token (so /api/docs/ can send one)."""

    target_class = "registry.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "tly_<prefix>_<secret>"}
