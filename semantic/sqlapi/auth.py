"""Who a SQL API connection is: ``authenticate_connection(user, password) -> Identity``.

The server calls this once, at the startup message, with the user name and the password
the client sent (cleartext inside the connection: use TLS outside localhost).

* A password of the form ``tly_<prefix>_<secret>`` is a Tally API token, verified by access
  control's ``token_authenticate`` (HMAC, expiry, revocation); the user name is only a
  label then (BI tools insist on one). The token's scopes must allow querying.
* Anything else is the Django user's own password (``django.contrib.auth.authenticate``),
  for people connecting with psql; that user's roles must allow querying.

Every attempt goes through ``login_authenticate`` (registry/services/logins.py): throttled
per user name and client address (a token's attempts per client address only: its user
name is a label anyone can send), each failure audited; while locked the connection is
refused with 28P01 before the password is checked.

The principal (row policies, masking) comes from ``registry.permissions.principal_for``,
the same function the HTTP API uses, so a token sees the same rows over SQL and HTTP.

Before statements the server calls ``identity_recheck``: it reads the access generation
(registry/access_cache.py), which every write that can change a principal bumps. While it is
unchanged only the token's expiry is checked (against the clock); once it changed the token
(or user) is read again and the query right and the principal derived again, so a revoked
token or a removed role ends the session at its next statement (``SessionEnded``, rendered
as FATAL 28000 and audited) and a changed row-policy binding applies to the next statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import authenticate as django_authenticate
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from registry.access_cache import access_generation
from registry.models import ApiToken
from registry.permissions import principal_for, user_can
from registry.roles import Action
from registry.services.access import TokenInvalid, token_authenticate
from registry.services.audit import (
    access_context_bind,
    access_context_reset,
    audit_event_create,
)
from registry.services.logins import LoginLocked, login_authenticate
from semantic.compiler.principal import Principal

MSG_AUTH_FAILED = 'password authentication failed for user "{user}"'
MSG_NO_QUERY = 'role "{user}" may not query metrics'
MSG_SESSION_ENDED = "terminating connection: {reason}"
MSG_NO_LONGER_QUERY = 'role "{user}" may no longer query metrics'
TOKEN_PREFIX = "tly_"


class AuthenticationFailed(Exception):
    """Wrong user name, password or token (rendered as FATAL 28P01)."""


class NotAllowed(Exception):
    """Authenticated, but not allowed to query (rendered as FATAL 28000)."""


class SessionEnded(Exception):
    """A running session lost its right to query (rendered as FATAL 28000)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Identity:
    """A connection's principal, plus the user (and token) its audit rows name."""

    principal: Principal
    account: Any
    token: Any = None
    # The access generation read before the rows this identity was derived from.
    generation: int | None = None


def peer_address(sock: Any) -> str | None:
    """The client's IP address of a connected socket (None for a Unix socket or a closed one)."""
    try:
        peer = sock.getpeername()
    except OSError:
        return None
    return peer[0] if isinstance(peer, tuple) and peer else None


def _check_credentials(user: str, password: str) -> tuple[Any, Any] | None:
    # (account, token), or None for a wrong user name, password or token.
    if password.startswith(TOKEN_PREFIX):
        try:
            token = token_authenticate(password)
        except TokenInvalid:
            return None
        return token.user, token
    account = django_authenticate(username=user, password=password) if password else None
    if account is None or not account.is_active:
        return None
    return account, None


def authenticate_connection(user: str, password: str, *, peer: Any = None) -> Identity:
    """The identity of a startup message's user and password (token or Django password),
    throttled per user name and the client address of ``peer`` (the connection's socket)."""
    address = peer_address(peer) if peer is not None else None
    generation = access_generation()
    try:
        found = login_authenticate(
            username=user,
            ip=address,
            interface="sql",
            check=lambda: _check_credentials(user, password),
            per_account=not password.startswith(TOKEN_PREFIX),
        )
    except LoginLocked as exc:
        # The startup FATAL has no hint field here: the message says what to do.
        raise AuthenticationFailed(f"{exc.message}; {exc.hint}") from None
    if found is None:
        raise AuthenticationFailed(MSG_AUTH_FAILED.format(user=user))
    account, token = found
    if not user_can(account, Action.QUERY, token=token):
        raise NotAllowed(MSG_NO_QUERY.format(user=user))
    return Identity(principal_for(account, token=token), account, token, generation)


def _token_binding(token: Any) -> tuple[Any, ...]:
    # What of a token row shapes the principal and the query right.
    return (token.user_id, token.service, token.tenant, token.attributes, sorted(token.scopes))


def _lost_right(identity: Identity, *, grants: bool) -> tuple[str, str, Any, Any, bool]:
    # (reason, message, account, token, derive): reason "" while the session may go on;
    # derive: the grants and the principal must be derived again.
    token = identity.token
    derive = grants
    if token is not None:
        fresh = ApiToken.objects.select_related("user").filter(pk=token.pk).first()
        if fresh is None or fresh.revoked_at is not None:
            return "token_revoked", "token revoked", identity.account, token, False
        if fresh.expires_at is not None and fresh.expires_at <= timezone.now():
            return "token_expired", "token expired", identity.account, token, False
        derive = derive or _token_binding(fresh) != _token_binding(token)
        account = fresh.user
        token = fresh
    else:
        account = get_user_model().objects.filter(pk=identity.account.pk).first()
        if account is None:
            return "user_deleted", "user deleted", identity.account, None, False
        derive = derive or account.is_superuser != identity.account.is_superuser
    if not account.is_active:
        return "user_inactive", "user deactivated", account, token, False
    if derive and not user_can(account, Action.QUERY, token=token):
        user = token.name if token is not None and token.service else account.get_username()
        message = MSG_NO_LONGER_QUERY.format(user=user)
        return "query_right_removed", message, account, token, False
    return "", "", account, token, derive


def _expired(token: Any) -> bool:
    return bool(token is not None and token.expires_at and token.expires_at <= timezone.now())


def identity_recheck(identity: Identity, *, session: str, grants: bool = True) -> Identity:
    """The session's identity as of now.

    While the access generation is the one the identity was derived at (and ``grants`` is
    false), nothing that shapes it changed: only the token's expiry is checked, against the
    clock. Otherwise the token (or, for a password session, the user) is read again, which
    ends the session when the token is revoked or expired or the user is gone or inactive,
    and the query right is checked and the principal derived again, so a changed role or
    tenant applies from here on.

    Raises:
        SessionEnded: the session lost its right to query; an audit row
            ``sql.session_end`` (with the reason and ``session``, the client's user name) is
            written first.
    """
    generation = access_generation()
    unchanged = generation is not None and generation == identity.generation
    if unchanged and not grants and not _expired(identity.token):
        return identity
    reason, message, account, token, derive = _lost_right(identity, grants=grants or not unchanged)
    if reason:
        bound = access_context_bind(token=token, principal=identity.principal.name)
        try:
            with transaction.atomic():
                audit_event_create(
                    actor=account,
                    action="sql.session_end",
                    object_kind="token" if token is not None else "user",
                    object_name=token.name if token is not None else account.get_username(),
                    payload={"reason": reason, "session": session, "interface": "sql"},
                )
        finally:
            access_context_reset(bound)
        raise SessionEnded(reason, MSG_SESSION_ENDED.format(reason=message))
    if not derive:
        return Identity(identity.principal, account, token, generation)
    return Identity(principal_for(account, token=token), account, token, generation)
