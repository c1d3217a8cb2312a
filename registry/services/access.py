"""Writes of access control: role grants, access profiles, API tokens (create, use, revoke).

Tokens are ``tly_<prefix>_<secret>``. Only the prefix (to find the row) and
HMAC-SHA256(TALLY_TOKEN_KEY, token) are stored; the raw token is returned once by
``token_create`` and never written anywhere, the audit log included.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from registry.models import AccessProfile, ApiToken, Domain, RoleGrant
from registry.permissions import access_require, grants_forget, user_actions, user_can
from registry.roles import DOMAIN_ROLES, Action, Role, Scope, actions_of_scopes
from registry.services.audit import access_context_bind, audit_event_create
from tally.errors import NotFound, PermissionDenied, UserError

TOKEN_RE = re.compile(r"^tly_([0-9a-f]{12})_([A-Za-z0-9_\-]{20,100})$")
SERVICE_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,62}$")
ATTR_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
DURATION_RE = re.compile(r"^(\d{1,5})([mhdw])$")
DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# last_used_at is written at most this often per token (one UPDATE, not one per request).
LAST_USED_EVERY = dt.timedelta(seconds=60)
SERVICE_USER_PREFIX = "svc."

UNKNOWN_ROLE = "unknown role {role!r}"
UNKNOWN_SCOPE = "unknown scope {scope!r}"


# --------------------------------------------------------------------------- parsing helpers


def parse_duration(text: str, *, field: str = "expires") -> dt.timedelta:
    """``30d``, ``12h``, ``90m``, ``2w`` → a timedelta; a clear error naming ``field``."""
    found = DURATION_RE.match(text.strip())
    if not found or int(found.group(1)) == 0:
        raise UserError(
            f"{text!r} is not a duration",
            code="invalid_duration",
            location=field,
            hint="use a number and a unit: 90m, 12h, 30d, 2w",
        )
    return dt.timedelta(**{DURATION_UNITS[found.group(2)]: int(found.group(1))})


def parse_attributes(items: list[str], *, field: str = "attr") -> dict[str, Any]:
    """``["regions=EU,US", "tier=gold"]`` → ``{"regions": ["EU", "US"], "tier": "gold"}``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not ATTR_KEY_RE.match(key):
            raise UserError(
                f"{item!r} is not key=value",
                code="invalid_attribute",
                location=field,
                hint="e.g. --attr regions=EU,US (a comma makes a list)",
            )
        parts = [v.strip() for v in value.split(",") if v.strip()]
        out[key] = parts if "," in value else value.strip()
    return out


def parse_scopes(scopes: list[str] | str, *, field: str = "scopes") -> list[str]:
    items = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    out: list[str] = []
    for raw in items:
        scope = raw.strip()
        if not scope:
            continue
        if scope not in Scope._value2member_map_:
            raise UserError(
                UNKNOWN_SCOPE.format(scope=scope),
                code="invalid_scope",
                location=field,
                hint="scopes: " + ", ".join(s.value for s in Scope),
            )
        if scope not in out:
            out.append(scope)
    if not out:
        raise UserError(
            "a token needs at least one scope",
            code="invalid_scope",
            location=field,
            hint="e.g. --scope read,compile",
        )
    return out


def _role(value: str, *, field: str = "role") -> Role:
    if value not in Role._value2member_map_:
        raise UserError(
            UNKNOWN_ROLE.format(role=value),
            code="invalid_role",
            location=field,
            hint="roles: " + ", ".join(r.value for r in Role),
        )
    return Role(value)


def user_get(username: str, *, field: str = "user") -> Any:
    """A user by username, or a NotFound naming the field."""
    found = get_user_model().objects.filter(username=username).first()
    if found is None:
        raise NotFound(
            f"no user {username!r}",
            code="unknown_user",
            location=field,
            hint="create it with tally createsuperuser, or sync governance YAML members",
        )
    return found


def _domain(slug: str | None, role: Role) -> Domain | None:
    if role in DOMAIN_ROLES and not slug:
        raise UserError(
            f"role {role.value} is held in a domain",
            code="domain_required",
            location="domain",
            hint=f"add --domain SLUG (domains: {', '.join(_domain_slugs()) or 'none yet'})",
        )
    if role not in DOMAIN_ROLES and slug:
        raise UserError(
            f"role {role.value} is global, not per domain",
            code="domain_not_allowed",
            location="domain",
            hint="drop --domain; only editor and reviewer are per domain",
        )
    if not slug:
        return None
    domain = Domain.objects.filter(slug=slug).first()
    if domain is None:
        raise NotFound(
            f"no domain {slug!r}",
            code="unknown_domain",
            location="domain",
            hint=f"domains: {', '.join(_domain_slugs()) or 'none yet'}",
        )
    return domain


def _domain_slugs() -> list[str]:
    return list(Domain.objects.order_by("slug").values_list("slug", flat=True))


# --------------------------------------------------------------------------- roles


@transaction.atomic(durable=True)
def role_grant(
    *, user: Any, role: str, domain: str | None = None, acting_user: Any = None
) -> RoleGrant:
    """Grants a role (idempotent); acting_user None is the operator's own CLI."""
    if acting_user is not None:
        access_require(acting_user, Action.MANAGE_ROLES)
    parsed = _role(role)
    found_domain = _domain(domain, parsed)
    grant, created = RoleGrant.objects.get_or_create(user=user, role=parsed, domain=found_domain)
    if created:
        grant.granted_by = acting_user if getattr(acting_user, "pk", None) else None
        grant.save(update_fields=["granted_by"])
        audit_event_create(
            actor=acting_user,
            action="role.grant",
            object_kind="user",
            object_name=user.username,
            payload={"role": parsed.value, "domain": domain},
        )
    grants_forget(user)
    return grant


@transaction.atomic(durable=True)
def role_revoke(*, user: Any, role: str, domain: str | None = None, acting_user: Any = None) -> int:
    """Removes a role grant; returns how many rows went (0 when it was not held)."""
    if acting_user is not None:
        access_require(acting_user, Action.MANAGE_ROLES)
    parsed = _role(role)
    found_domain = _domain(domain, parsed)
    deleted, _ = RoleGrant.objects.filter(user=user, role=parsed, domain=found_domain).delete()
    if deleted:
        audit_event_create(
            actor=acting_user,
            action="role.revoke",
            object_kind="user",
            object_name=user.username,
            payload={"role": parsed.value, "domain": domain},
        )
    grants_forget(user)
    return deleted


@transaction.atomic(durable=True)
def access_profile_set(
    *, user: Any, attributes: dict[str, Any], acting_user: Any = None
) -> AccessProfile:
    """Replaces a user's row-policy attributes (tenant_id, regions…)."""
    if acting_user is not None:
        access_require(acting_user, Action.MANAGE_ROLES)
    profile, _ = AccessProfile.objects.get_or_create(user=user)
    profile.attributes = attributes
    profile.save(update_fields=["attributes", "updated_at"])
    audit_event_create(
        actor=acting_user,
        action="profile.set",
        object_kind="user",
        object_name=user.username,
        payload={"attributes": attributes},
    )
    return profile


# --------------------------------------------------------------------------- tokens


def _token_key() -> bytes:
    return str(settings.TALLY_TOKEN_KEY).encode()


def token_digest(raw: str) -> str:
    """HMAC-SHA256 of a raw token under the server key (hex)."""
    return hmac.new(_token_key(), raw.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class CreatedToken:
    token: ApiToken
    # Shown once: the only place the raw token exists.
    raw: str


def _service_user(service: str) -> Any:
    if not SERVICE_RE.match(service):
        raise UserError(
            f"{service!r} is not a service name",
            code="invalid_service",
            location="service",
            hint="lower-case letters, digits, - and _, e.g. powerbi-eu",
        )
    user, created = get_user_model().objects.get_or_create(
        username=f"{SERVICE_USER_PREFIX}{service}"
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


MSG_WIDER_BINDING = (
    "a token cannot see more than its user: {what} differs from your own row-policy attributes"
)


def _own_binding_check(user: Any, *, tenant: str, attributes: dict[str, Any]) -> None:
    """A person's own token may narrow what its user sees, never widen it: a restricted user
    can bind a token only to the tenant and attribute values of their own profile (the token's
    binding overrides the profile's in the principal). Unrestricted users and token managers
    may bind any tenant, which only narrows what they see."""
    from registry.permissions import principal_for, user_can

    if not (tenant or attributes) or user_can(user, Action.MANAGE_TOKENS):
        return
    own = principal_for(user)
    if own.unrestricted:
        return
    wanted = {**attributes, **({"tenant_id": tenant} if tenant else {})}
    for key, value in wanted.items():
        if own.attributes.get(key) != value:
            raise PermissionDenied(
                MSG_WIDER_BINDING.format(what="tenant" if key == "tenant_id" else repr(key)),
                code="forbidden",
                location="tenant" if key == "tenant_id" else "attributes",
                hint="leave the binding out (the token takes your profile's), or ask an admin",
            )


@transaction.atomic(durable=True)
def token_create(
    *,
    acting_user: Any,
    scopes: list[str] | str,
    user: Any = None,
    service: str | None = None,
    name: str | None = None,
    expires_in: dt.timedelta | None = None,
    tenant: str = "",
    attributes: dict[str, Any] | None = None,
) -> CreatedToken:
    """Creates a token for a user or a service account and returns it once, in the clear.

    A person may create tokens for themselves within their own actions; tokens for others
    and for service accounts need manage_tokens (acting_user None: the operator's CLI).
    """
    if (user is None) == (not service):
        raise UserError(
            "a token belongs to a user or to a service, not both or neither",
            code="token_owner",
            location="user",
            hint="give --user NAME or --service NAME",
        )
    parsed = parse_scopes(scopes)
    owner = _service_user(service) if service else user
    if acting_user is not None:
        own = service is None and getattr(owner, "pk", None) == getattr(acting_user, "pk", None)
        if not own:
            access_require(acting_user, Action.MANAGE_TOKENS)
        else:
            missing = actions_of_scopes(parsed) - user_actions(acting_user)
            if missing:
                raise PermissionDenied(
                    "a token cannot do more than its user: your roles do not allow "
                    + ", ".join(sorted(a.value for a in missing)),
                    code="forbidden",
                    location="scopes",
                    hint="drop those scopes, or ask an admin for a role that allows them",
                )
            _own_binding_check(acting_user, tenant=tenant, attributes=attributes or {})
    if tenant and len(tenant) > 100:
        raise UserError("tenant is longer than 100 characters", code="invalid", location="tenant")
    prefix = secrets.token_hex(6)
    raw = f"tly_{prefix}_{secrets.token_urlsafe(32)}"
    label = name or (f"{service}" if service else f"{owner.username}-{prefix[:4]}")
    token = ApiToken.objects.create(
        prefix=prefix,
        digest=token_digest(raw),
        name=label[:100],
        user=owner,
        service=service or "",
        scopes=parsed,
        tenant=tenant or "",
        attributes=attributes or {},
        created_by=acting_user if getattr(acting_user, "pk", None) else None,
        expires_at=timezone.now() + expires_in if expires_in else None,
    )
    audit_event_create(
        actor=acting_user,
        action="token.create",
        object_kind="token",
        object_name=token.prefix,
        payload={
            "name": token.name,
            "user": owner.username,
            "service": token.service,
            "scopes": parsed,
            "tenant": token.tenant,
            "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        },
    )
    return CreatedToken(token, raw)


def _token_by_ref(text: str) -> ApiToken | None:
    """The token whose prefix is ``text``, else (for a number) whose id is; a prefix is
    random hex and can be all digits, so it is tried first."""
    query = ApiToken.objects.select_related("user")
    found = query.filter(prefix=text).first()
    if found is None and text.isdigit():
        found = query.filter(pk=int(text)).first()
    return found


def token_get(*, ref: str | int) -> ApiToken:
    """A token by id or prefix; NotFound otherwise."""
    text = str(ref)
    found = _token_by_ref(text)
    if found is None:
        raise NotFound(f"no token {ref!r}", code="unknown_token", hint="tally token list")
    return found


def token_get_visible(*, ref: str | int, user: Any) -> ApiToken:
    """A token ``user`` may see (their own, or any with manage_tokens); one NotFound, the
    same text, for a token that does not exist and one that is someone else's, so the
    answer does not reveal which ids exist."""
    text = str(ref)
    found = _token_by_ref(text)
    if found is not None and (
        found.user_id == getattr(user, "pk", None) or user_can(user, Action.MANAGE_TOKENS)
    ):
        return found
    raise NotFound(f"no token {text!r}", code="unknown_token", hint="tally token list")


@transaction.atomic(durable=True)
def token_revoke(*, token: ApiToken, acting_user: Any) -> ApiToken:
    """Revokes a token (its owner or manage_tokens); revoking twice changes nothing."""
    if acting_user is not None and token.user_id != acting_user.pk:
        access_require(acting_user, Action.MANAGE_TOKENS)
    if token.revoked_at is None:
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now(),
            revoked_by=acting_user if getattr(acting_user, "pk", None) else None,
        )
        token.refresh_from_db()
        audit_event_create(
            actor=acting_user,
            action="token.revoke",
            object_kind="token",
            object_name=token.prefix,
            payload={"name": token.name},
        )
    return token


class TokenInvalid(Exception):
    """The presented bearer token is malformed, unknown, revoked or expired (message says)."""


def token_authenticate(raw: str) -> ApiToken:
    """The live token for a raw bearer value; touches last_used_at at most once a minute.

    Raises:
        TokenInvalid: malformed, unknown, revoked, expired, or its user is inactive.
    """
    found = TOKEN_RE.match(raw.strip())
    if not found:
        raise TokenInvalid("malformed token (expected tly_<prefix>_<secret>)")
    # One indexed lookup brings the token, its user and the user's access profile (row
    # policies read it: principal_for), all read fresh on every request, so a revocation,
    # an expiry or a deactivated user counts at once. get(): no ORDER BY for a unique key.
    try:
        token = ApiToken.objects.select_related("user", "user__access_profile").get(
            prefix=found.group(1)
        )
    except ApiToken.DoesNotExist:
        token = None
    # Compare even when the prefix is unknown, so timing does not reveal which prefixes exist.
    expected = token.digest if token is not None else "0" * 64
    if not hmac.compare_digest(expected, token_digest(raw.strip())) or token is None:
        raise TokenInvalid("invalid token")
    token_admit(token)
    return token


def token_admit(token: ApiToken) -> None:
    """Admits one request of a token read earlier (now or, by registry/access_cache.py, at an
    unchanged access generation): refuses it when revoked, expired by the clock now, or its
    user is inactive; binds it to the audit context; touches last_used_at when due.

    Raises:
        TokenInvalid: revoked, expired, or its user is inactive.
    """
    now = timezone.now()
    if token.revoked_at is not None:
        raise TokenInvalid("token revoked")
    if token.expires_at is not None and token.expires_at <= now:
        raise TokenInvalid("token expired")
    if not token.user.is_active:
        raise TokenInvalid("the token's user is inactive")
    access_context_bind(token=token, principal=f"token:{token.name}")
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY:
        _token_touch(token, now)


def _token_touch(token: ApiToken, now: dt.datetime) -> None:
    # A conditional UPDATE: of concurrent requests in the same minute only one writes, and
    # only that one appends the "token.use" audit row.
    stale = now - LAST_USED_EVERY
    with transaction.atomic():
        claimed = (
            ApiToken.objects.filter(pk=token.pk)
            .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale))
            .update(last_used_at=now)
        )
        if claimed:
            audit_event_create(
                actor=token.user,
                action="token.use",
                object_kind="token",
                object_name=token.prefix,
                payload={"name": token.name},
            )
    token.last_used_at = now
