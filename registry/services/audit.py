"""The append-only audit log: every service writes its row inside its own transaction.

A request's access context (the API token it came with, the principal, the client address)
is bound once per request (``tally.middleware.AccessContextMiddleware`` and the bearer-token
authenticator) so every audit row a service writes names the token, without each service
taking it as an argument.
"""

from __future__ import annotations

import contextvars
import hashlib
from dataclasses import dataclass, replace
from typing import Any

from registry.models import ApiToken, AuditEvent, Release


@dataclass(frozen=True)
class AccessContext:
    token: ApiToken | None = None
    principal: str | None = None
    ip: str | None = None


_context: contextvars.ContextVar[AccessContext] = contextvars.ContextVar(
    "tally_access_context",
    default=AccessContext(),  # noqa: B039 (a frozen dataclass: never mutated)
)


def access_context_bind(**changes: Any) -> contextvars.Token[AccessContext]:
    """Sets fields of the current context; returns the token that restores the old one."""
    return _context.set(replace(_context.get(), **changes))


def access_context_reset(token: contextvars.Token[AccessContext]) -> None:
    _context.reset(token)


def sql_hash(sql: str) -> str:
    """SHA-256 of compiled SQL, as audit rows store it (the SQL itself is reproducible)."""
    return hashlib.sha256(sql.encode()).hexdigest()


def audit_event_create(
    *,
    actor: Any,
    action: str,
    object_kind: str = "",
    object_name: str = "",
    release: Release | None = None,
    payload: dict[str, Any] | None = None,
    sql: str | None = None,
    row_count: int | None = None,
) -> AuditEvent:
    """Appends one audit row (call inside the service's transaction)."""
    context = _context.get()
    principal = context.principal
    if principal is None and getattr(actor, "pk", None):
        principal = f"user:{actor.username}"
    return AuditEvent.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        action=action,
        object_kind=object_kind,
        object_name=object_name[:255],
        release=release,
        payload=payload or {},
        token=context.token,
        principal=principal,
        sql_hash=sql_hash(sql) if sql is not None else None,
        row_count=row_count,
        ip=context.ip,
    )
