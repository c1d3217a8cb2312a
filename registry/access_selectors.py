"""Reads of access control: the audit log, tokens and role grants (API, CLI, UI)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import QuerySet

from registry.models import ApiToken, AuditEvent, RoleGrant


def audit_event_list(
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    action: str | None = None,
    actor: str | None = None,
    object_kind: str | None = None,
    object_name: str | None = None,
    token: str | None = None,
) -> QuerySet[AuditEvent]:
    """Audit rows newest first, filtered; ``action`` may end in ``.`` for a family
    (``proposal.`` = every proposal action). Served by the (action, at)/(actor, at) indexes."""
    qs = AuditEvent.objects.select_related("actor", "release", "token")
    if since is not None:
        qs = qs.filter(at__gte=since)
    if until is not None:
        qs = qs.filter(at__lt=until)
    if action:
        qs = (
            qs.filter(action__startswith=action)
            if action.endswith(".")
            else qs.filter(action=action)
        )
    if actor:
        qs = qs.filter(actor__username=actor)
    if object_kind:
        qs = qs.filter(object_kind=object_kind)
    if object_name:
        qs = qs.filter(object_name=object_name)
    if token:
        qs = qs.filter(token__prefix=token)
    return qs.order_by("-at", "-id")


def token_list(*, user: Any = None, include_revoked: bool = False) -> QuerySet[ApiToken]:
    """Tokens newest first (one user's when ``user`` is given), revoked ones on request."""
    qs = ApiToken.objects.select_related("user", "created_by")
    if user is not None:
        qs = qs.filter(user=user)
    if not include_revoked:
        qs = qs.filter(revoked_at__isnull=True)
    return qs.order_by("-id")


def role_grant_list(*, user: Any = None) -> QuerySet[RoleGrant]:
    """Explicit role grants (team-implied roles are computed, see registry.permissions)."""
    qs = RoleGrant.objects.select_related("user", "domain", "granted_by")
    if user is not None:
        qs = qs.filter(user=user)
    return qs.order_by("user__username", "role", "domain__slug")
