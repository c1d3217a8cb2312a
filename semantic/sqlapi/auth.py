"""Who a SQL API connection is: ``authenticate_connection(user, password) -> Identity``.

The server calls this once, at the startup message, with the user name and the password
the client sent (cleartext inside the connection: use TLS outside localhost).

* A password of the form ``tly_<prefix>_<secret>`` is a Tally API token, verified by access
  control's ``token_authenticate`` (HMAC, expiry, revocation); the user name is only a
  label then (BI tools insist on one). The token's scopes must allow querying.
* Anything else is the Django user's own password (``django.contrib.auth.authenticate``),
  for people connecting with psql; that user's roles must allow querying.

The principal (row policies, masking) comes from ``registry.permissions.principal_for``,
the same function the HTTP API uses, so a token sees the same rows over SQL and HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import authenticate as django_authenticate

from registry.permissions import principal_for, user_can
from registry.roles import Action
from registry.services.access import TokenInvalid, token_authenticate
from semantic.compiler.principal import Principal

MSG_AUTH_FAILED = 'password authentication failed for user "{user}"'
MSG_NO_QUERY = 'role "{user}" may not query metrics'
TOKEN_PREFIX = "tly_"


class AuthenticationFailed(Exception):
    """Wrong user name, password or token (rendered as FATAL 28P01)."""


class NotAllowed(Exception):
    """Authenticated, but not allowed to query (rendered as FATAL 28000)."""


@dataclass(frozen=True)
class Identity:
    """A connection's principal, plus the user (and token) its audit rows name."""

    principal: Principal
    account: Any
    token: Any = None


def authenticate_connection(user: str, password: str) -> Identity:
    """The identity of a startup message's user and password (token or Django password)."""
    token = None
    if password.startswith(TOKEN_PREFIX):
        try:
            token = token_authenticate(password)
        except TokenInvalid:
            raise AuthenticationFailed(MSG_AUTH_FAILED.format(user=user)) from None
        account = token.user
    else:
        account = django_authenticate(username=user, password=password) if password else None
        if account is None or not account.is_active:
            raise AuthenticationFailed(MSG_AUTH_FAILED.format(user=user))
    if not user_can(account, Action.QUERY, token=token):
        raise NotAllowed(MSG_NO_QUERY.format(user=user))
    return Identity(principal_for(account, token=token), account, token)
