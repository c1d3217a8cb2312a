"""May this user (or token) do X? The decisions every interface (API, CLI, UI) calls.

Effective roles = explicit ``RoleGrant`` rows + what team membership implies (a member of a
domain's owning team is ``reviewer`` in that domain; a member of data governance holds
``governance``) + ``TALLY_DEFAULT_ROLE`` for every signed-in person + ``admin`` for
superusers. A token narrows its user's actions to its scopes; a service account's token
may do exactly its scopes. ``rules`` permissions (``registry.<action>``) expose the same
decisions to ``user.has_perm`` and templates (``{% has_perm %}``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import rules
from django.conf import settings
from django.db.models import Q

from registry.models import (
    AccessProfile,
    ApiToken,
    Definition,
    Domain,
    Proposal,
    RoleGrant,
    TeamMembership,
)
from registry.roles import (
    DOMAIN_ACTIONS,
    ROLE_ACTIONS,
    UNRESTRICTED_ROLES,
    Action,
    Role,
    actions_of_scopes,
)
from semantic.compiler.principal import Principal
from tally.errors import PermissionDenied

DENIED = "{who} may not {action}{where}: {why}"
# Stable error codes of denials; reviews keep the code the review service has always used.
DENIAL_CODES = {Action.REVIEW: "not_a_reviewer"}
_CACHE_ATTR = "_tally_grants"


@dataclass(frozen=True)
class Grants:
    """A user's effective roles: global ones, and per domain slug."""

    global_roles: frozenset[Role] = frozenset()
    domain_roles: dict[str, frozenset[Role]] = field(default_factory=dict)

    def actions(self, domain: str | None = None) -> frozenset[Action]:
        """Actions allowed in ``domain`` (None: anywhere, i.e. in at least one domain)."""
        out: set[Action] = set()
        for role in self.global_roles:
            out |= ROLE_ACTIONS[role]
        for slug, roles in self.domain_roles.items():
            for role in roles:
                # A domain role's non-domain actions (read, compile…) hold everywhere.
                allowed = ROLE_ACTIONS[role]
                out |= allowed - DOMAIN_ACTIONS
                if domain is None or domain == slug:
                    out |= allowed & DOMAIN_ACTIONS
        return frozenset(out)

    def labels(self) -> list[str]:
        """``["analyst", "reviewer@product"]``: for messages, ``tally role list`` and /me."""
        out = sorted(r.value for r in self.global_roles)
        for slug in sorted(self.domain_roles):
            out += [f"{r.value}@{slug}" for r in sorted(self.domain_roles[slug])]
        return out


def _default_role() -> Role | None:
    value = str(getattr(settings, "TALLY_DEFAULT_ROLE", "") or "")
    return Role(value) if value else None


def user_grants(user: Any) -> Grants:
    """The effective roles of a user (cached on the user object for one request)."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return Grants()
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    global_roles: set[Role] = set()
    domains: dict[str, set[Role]] = {}
    if user.is_superuser:
        global_roles.add(Role.ADMIN)
    default = _default_role()
    if default is not None:
        global_roles.add(default)
    # order_by(): the models' default ordering costs a sort, and its compilation, for
    # nothing; this runs on every API request.
    grants_qs = RoleGrant.objects.filter(user=user).order_by()
    for role, slug in grants_qs.values_list("role", "domain__slug"):
        if slug:
            domains.setdefault(slug, set()).add(Role(role))
        else:
            global_roles.add(Role(role))
    # Imported here: this module loads at start-up (registry's ready()), and review policy
    # pulls in the definitions parser and YAML, which most processes never use.
    from registry.services.review_policy import governance_team

    # One query: each team of the user with every domain it owns (NULL when it owns none).
    for team, slug in (
        TeamMembership.objects.filter(user=user)
        .order_by()
        .values_list("team__slug", "team__domain__slug")
    ):
        if team == governance_team():
            global_roles.add(Role.GOVERNANCE)
        if slug:
            domains.setdefault(slug, set()).add(Role.REVIEWER)
    grants = Grants(frozenset(global_roles), {k: frozenset(v) for k, v in domains.items()})
    setattr(user, _CACHE_ATTR, grants)
    return grants


def grants_forget(user: Any) -> None:
    """Drops the per-object cache after a grant changes (the CLI and tests reuse users)."""
    if hasattr(user, _CACHE_ATTR):
        delattr(user, _CACHE_ATTR)


def user_actions(user: Any, *, token: ApiToken | None = None) -> frozenset[Action]:
    """Every action the user (through ``token``, if any) may do somewhere."""
    allowed = user_grants(user).actions()
    if token is None:
        return allowed
    scoped = actions_of_scopes(token.scopes)
    return scoped if token.service else allowed & scoped


def domains_of(obj: Any) -> set[str]:
    """The domain slugs an object belongs to (a proposal: those of every changed definition)."""
    if obj is None:
        return set()
    if isinstance(obj, str):
        return {obj}
    if isinstance(obj, Domain):
        return {obj.slug}
    if isinstance(obj, Definition):
        return {obj.domain.slug} if obj.domain_id else set()
    if isinstance(obj, Proposal):
        from registry.definitions.objects import PROJECT, governance_of
        from registry.selectors import proposal_changes

        out: set[str] = set()
        released = Q(pk__in=[])
        for change in proposal_changes(proposal=obj):
            if change.kind == PROJECT:
                # The project configuration (time spine) serves every domain.
                out |= set(Domain.objects.values_list("slug", flat=True))
                continue
            domain = governance_of(change.kind, change.spec).get("domain")
            if domain:
                out.add(str(domain))
            released |= Q(kind=change.kind, name=change.name)
        # The released definition's domain governs too (a retirement has no spec, and moving
        # a metric out of a domain needs that domain's rights as well): the head's domain, and
        # the one its released spec names (heads synced before contracts and saved queries had
        # domains carry none). One query.
        for kind, slug, spec in Definition.objects.filter(released).values_list(
            "kind", "domain__slug", "current_version__spec"
        ):
            domain = slug or governance_of(kind, spec).get("domain")
            if domain:
                out.add(str(domain))
        return out
    raise TypeError(f"no domain for {type(obj).__name__}")


def _why(user: Any, action: Action, token: ApiToken | None) -> tuple[str, str]:
    if token is not None and action not in actions_of_scopes(token.scopes):
        scopes = ",".join(token.scopes) or "none"
        return (
            f"the token's scopes ({scopes}) do not include it",
            "create a token with a scope that allows it (tally token create --scope …)",
        )
    roles = ", ".join(user_grants(user).labels()) or "none"
    return (
        f"your roles ({roles}) do not allow it",
        f"ask an admin: tally role grant {getattr(user, 'username', 'USER')} ROLE [--domain D]",
    )


def user_can(
    user: Any, action: Action | str, *, obj: Any = None, token: ApiToken | None = None
) -> bool:
    """True when ``user`` (through ``token``) may do ``action``, in every domain of ``obj``."""
    action = Action(action)
    if not getattr(user, "is_authenticated", False):
        return False
    if token is not None:
        if action not in actions_of_scopes(token.scopes):
            return False
        if token.service:
            # A service account has no roles: its scopes are its grant.
            return True
    grants = user_grants(user)
    if action not in DOMAIN_ACTIONS or obj is None:
        return action in grants.actions()
    slugs = domains_of(obj)
    if not slugs:
        return action in grants.actions()
    if action == Action.REVIEW:
        # Reviewing one domain of a proposal is enough; the review policy decides the rest.
        return any(action in grants.actions(slug) for slug in slugs)
    return all(action in grants.actions(slug) for slug in slugs)


def access_require(
    user: Any, action: Action | str, *, obj: Any = None, token: ApiToken | None = None
) -> None:
    """Raises a 403 PermissionDenied whose message says who, what and why."""
    if user_can(user, action, obj=obj, token=token):
        return
    action = Action(action)
    slugs = sorted(domains_of(obj)) if action in DOMAIN_ACTIONS else []
    where = f" in domain {', '.join(slugs)}" if slugs else ""
    who = f"token {token.name!r}" if token is not None else repr(getattr(user, "username", "?"))
    why, hint = _why(user, action, token)
    raise PermissionDenied(
        DENIED.format(who=who, action=action.value, where=where, why=why),
        code=DENIAL_CODES.get(action, "forbidden"),
        hint=hint,
        details={"action": action.value, "domains": slugs},
    )


def access_require_audited(
    user: Any,
    action: Action | str,
    *,
    kind: str,
    where: str,
    obj: Any = None,
    token: ApiToken | None = None,
) -> None:
    """``access_require``, with the refusal itself audited (``access.denied``: probing for
    rights leaves a trail). Call it outside service transactions, so that the refusal does
    not roll its audit row back. ``kind``/``where`` name what was refused (an endpoint or a
    page, and its method and path)."""
    try:
        access_require(user, action, obj=obj, token=token)
    except PermissionDenied as exc:
        from registry.services.audit import audit_event_create

        audit_event_create(
            actor=user,
            action="access.denied",
            object_kind=kind,
            object_name=where,
            payload={"action": Action(action).value, "reason": exc.message},
        )
        raise


def page_require(request: Any, action: Action | str, obj: Any = None) -> None:
    """A web page's check (its action, or the action on an object), refusals audited."""
    access_require_audited(
        request.user, action, kind="page", where=f"{request.method} {request.path}", obj=obj
    )


def principal_for(user: Any, *, token: ApiToken | None = None) -> Principal:
    """The compiler's Principal for a request's user or token (row policies, masking)."""
    attributes: dict[str, Any] = {}
    # A service account's attributes are its token's alone; a person's token adds to (and
    # overrides) the person's profile.
    if token is None or not token.service:
        profile = _access_profile(user, token) if user.pk else None
        if profile is not None:
            attributes.update(profile.attributes)
    if token is not None:
        attributes.update(token.attributes or {})
        if token.tenant:
            attributes["tenant_id"] = token.tenant
    grants = user_grants(user)
    # A tenant-bound or service token is always restricted, whoever created it.
    unrestricted = bool(grants.global_roles & UNRESTRICTED_ROLES) and (
        token is None or (not token.service and not token.tenant)
    )
    name = f"token:{token.name}" if token is not None else f"user:{user.username}"
    return Principal(
        name=name,
        attributes=attributes,
        view_pii=user_can(user, Action.VIEW_PII, token=token),
        unrestricted=unrestricted,
    )


def _access_profile(user: Any, token: ApiToken | None) -> Any:
    """The user's AccessProfile or None. A request's token was read with its user and profile
    in one query (token_authenticate): that copy is as fresh as the token. Otherwise it is
    read now, never taken from a cache on a user object that may have outlived a change."""
    if token is not None and token.user is user and type(user).access_profile.is_cached(user):
        return getattr(user, "access_profile", None)
    return AccessProfile.objects.filter(user=user).order_by().first()


# --------------------------------------------------------------------------- rules (has_perm)


def _predicate(action: Action) -> Any:
    @rules.predicate(name=f"can_{action.value}")
    def check(user: Any, obj: Any = None) -> bool:
        return user_can(user, action, obj=obj)

    return check


for _action in Action:
    # user.has_perm("registry.review", proposal), {% has_perm "registry.query" user %}.
    rules.set_perm(f"registry.{_action.value}", _predicate(_action))


def user_is_admin(user: Any, *, token: ApiToken | None = None) -> bool:
    """An administrator (superuser or the global admin role), not through a tenant-bound or
    service token: who may read the warehouse's own error texts."""
    if token is not None and (token.service or token.tenant):
        return False
    return Role.ADMIN in user_grants(user).global_roles


def request_is_admin(request: Any) -> bool:
    """``user_is_admin`` for a request (a session, or the API token it authenticated with)."""
    auth = getattr(request, "auth", None)
    token = auth if isinstance(auth, ApiToken) else None
    return user_is_admin(getattr(request, "user", None), token=token)
