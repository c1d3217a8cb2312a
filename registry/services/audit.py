"""The append-only audit log: every service writes its row inside its own transaction."""

from __future__ import annotations

from typing import Any

from registry.models import AuditEvent, Release


def audit_event_create(
    *,
    actor: Any,
    action: str,
    object_kind: str = "",
    object_name: str = "",
    release: Release | None = None,
    payload: dict[str, Any] | None = None,
) -> AuditEvent:
    """Appends one audit row (call inside the service's transaction)."""
    return AuditEvent.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        action=action,
        object_kind=object_kind,
        object_name=object_name,
        release=release,
        payload=payload or {},
    )
