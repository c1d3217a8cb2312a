"""Who calls an MCP tool: a Tally API token, checked again on every call.

A token is checked on each call (not once per connection), so a revoked or expired token, a
removed role or a changed tenant binding applies from the next call on, as it does for the
HTTP API. The check reads the access generation (registry/access_cache.py) and derives the
principal again only when it changed; expiry is checked against the clock on every call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from registry.access_cache import token_access
from registry.permissions import access_require_audited
from registry.roles import Action
from registry.services.access import TokenInvalid
from semantic.compiler.principal import Principal
from tally.errors import UserError

MSG_NO_TOKEN = "no API token: every MCP call runs as the owner of a Tally API token"
HINT_NO_TOKEN = (
    "mint one with `tally token create --user U --scope read,compile,query` and pass it as "
    "TALLY_TOKEN (stdio) or as `Authorization: Bearer <token>` (HTTP)"
)
MSG_BAD_TOKEN = "the API token was refused: {reason}"


class Unauthenticated(UserError):
    """No token, or one that is malformed, unknown, revoked or expired (HTTP 401)."""

    http_status = 401
    default_code = "not_authenticated"


@dataclass(frozen=True)
class Caller:
    """The token's user, the token, and the principal row policies and masks see."""

    user: Any
    token: Any
    principal: Principal


def caller_authenticate(raw: str | None) -> Caller:
    """The caller of a raw bearer token (``tly_<prefix>_<secret>``); binds the token to the
    audit context as the HTTP authenticator does."""
    if not raw or not raw.strip():
        raise Unauthenticated(MSG_NO_TOKEN, hint=HINT_NO_TOKEN)
    try:
        access = token_access(raw)
    except TokenInvalid as exc:
        raise Unauthenticated(MSG_BAD_TOKEN.format(reason=exc), hint=HINT_NO_TOKEN) from None
    return Caller(user=access.token.user, token=access.token, principal=access.principal)


def caller_require(caller: Caller, action: Action, *, tool: str) -> None:
    """Refuses (403, audited as ``access.denied``) a caller whose token or roles lack
    ``action``, exactly as the API's permission class does for an endpoint."""
    access_require_audited(caller.user, action, kind="mcp", where=f"mcp {tool}", token=caller.token)


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header value (None when absent).

    Example:
        >>> bearer("Bearer tly_ab_cd")
        'tly_ab_cd'
        >>> bearer(None) is None
        True
    """
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None
