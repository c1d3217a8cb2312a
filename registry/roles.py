"""Roles, actions and token scopes: the one table of who may do what (Django-free).

Every API endpoint, CLI check and UI decision names an ``Action``; a role grants a set of
actions, globally or (for ``editor`` and ``reviewer``) in one domain. A token narrows its
user's actions to its scopes; a service account's token has exactly its scopes. The README's
"Access control" table is this table.
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    READ = "read"  # definitions, releases, lineage, dimensions, time-spine status
    COMPILE = "compile"
    QUERY = "query"
    VIEW_VALUES = "view_values"  # stored values, compute runs, audit results
    COMPUTE = "compute"  # start compute runs, refresh the time spine
    COMMENT = "comment"
    PROPOSE = "propose"  # per domain
    REVIEW = "review"  # per domain (the review policy still decides which proposals)
    MERGE = "merge"  # per domain
    MANAGE_TOKENS = "manage_tokens"  # any user's and service accounts' tokens
    VIEW_AUDIT_LOG = "view_audit_log"
    VIEW_PII = "view_pii"  # unmasked PII columns
    MANAGE_ROLES = "manage_roles"


class Role(StrEnum):
    VIEWER = "viewer"
    ANALYST = "analyst"
    EDITOR = "editor"
    REVIEWER = "reviewer"
    GOVERNANCE = "governance"
    AUDITOR = "auditor"
    ADMIN = "admin"


# Roles held in one domain (a grant names the domain); the others are global.
DOMAIN_ROLES = frozenset({Role.EDITOR, Role.REVIEWER})
# Actions a domain role grants only inside its domain.
DOMAIN_ACTIONS = frozenset({Action.PROPOSE, Action.REVIEW, Action.MERGE})
# Row policies do not apply to these roles (they trace and certify every tenant's numbers).
UNRESTRICTED_ROLES = frozenset({Role.GOVERNANCE, Role.AUDITOR, Role.ADMIN})

_VIEWER = frozenset({Action.READ, Action.VIEW_VALUES, Action.COMMENT})
_ANALYST = _VIEWER | {Action.COMPILE, Action.QUERY}
_EDITOR = _ANALYST | {Action.PROPOSE, Action.MERGE}
_REVIEWER = _EDITOR | {Action.REVIEW}

ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.VIEWER: _VIEWER,
    Role.ANALYST: _ANALYST,
    Role.EDITOR: frozenset(_EDITOR),
    Role.REVIEWER: frozenset(_REVIEWER),
    Role.GOVERNANCE: frozenset(
        _REVIEWER | {Action.COMPUTE, Action.VIEW_AUDIT_LOG, Action.VIEW_PII}
    ),
    Role.AUDITOR: frozenset(_ANALYST | {Action.VIEW_AUDIT_LOG}),
    Role.ADMIN: frozenset(Action),
}


class Scope(StrEnum):
    READ = "read"
    COMPILE = "compile"
    QUERY = "query"
    PROPOSE = "propose"
    AUDIT = "audit"
    PII = "pii"


# What a token with a scope may do (further limited by its user's own actions).
SCOPE_ACTIONS: dict[Scope, frozenset[Action]] = {
    Scope.READ: frozenset({Action.READ, Action.VIEW_VALUES}),
    Scope.COMPILE: frozenset({Action.READ, Action.COMPILE}),
    Scope.QUERY: frozenset({Action.READ, Action.QUERY}),
    Scope.PROPOSE: frozenset({Action.READ, Action.PROPOSE, Action.COMMENT}),
    Scope.AUDIT: frozenset({Action.READ, Action.VIEW_AUDIT_LOG}),
    # Unmasked PII in compiled SQL and results, for a user who may see it anyway.
    Scope.PII: frozenset({Action.VIEW_PII}),
}


def actions_of_scopes(scopes: list[str] | tuple[str, ...] | frozenset[str]) -> frozenset[Action]:
    """Every action a set of token scopes allows.

    Example:
        >>> sorted(actions_of_scopes(["compile"]))
        [<Action.COMPILE: 'compile'>, <Action.READ: 'read'>]
    """
    out: set[Action] = set()
    for scope in scopes:
        out |= SCOPE_ACTIONS[Scope(scope)]
    return frozenset(out)


def role_table() -> list[tuple[str, list[str]]]:
    """(role, sorted actions) rows in role order, for the CLI, API and README.

    Example:
        >>> role_table()[0]
        ('viewer', ['comment', 'read', 'view_values'])
    """
    return [(role.value, sorted(a.value for a in ROLE_ACTIONS[role])) for role in Role]
