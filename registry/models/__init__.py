"""Registry models: teams, domains, definitions with immutable versions, releases, audit log.

Every kind of definition (semantic model, metric, saved query, data contract, project
configuration) shares one pair of tables: ``Definition`` is the mutable head (status and the
denormalised fields search needs) and ``DefinitionVersion`` the immutable history. A
``Release`` pins exactly one version of each live definition, like a commit. Immutability is
enforced by database triggers (see migration 0002), not only by offering no update service.

One module per aggregate: teams, definitions, releases, audit, access, proposals.
"""

from registry.models.access import AccessGeneration, AccessProfile, ApiToken, RoleGrant
from registry.models.audit import AppendOnlyQuerySet, AuditEvent, AuditLogImmutable
from registry.models.definitions import (
    ChangeKind,
    Definition,
    DefinitionVersion,
    Kind,
    Status,
    Tier,
)
from registry.models.proposals import Comment, Proposal, ProposalChange, ProposalCheck, Review
from registry.models.releases import Deprecation, Release, ReleaseItem
from registry.models.teams import Domain, Team, TeamMembership

__all__ = [
    "AccessGeneration",
    "AccessProfile",
    "ApiToken",
    "AppendOnlyQuerySet",
    "AuditEvent",
    "AuditLogImmutable",
    "ChangeKind",
    "Comment",
    "Definition",
    "DefinitionVersion",
    "Deprecation",
    "Domain",
    "Kind",
    "Proposal",
    "ProposalChange",
    "ProposalCheck",
    "Release",
    "ReleaseItem",
    "Review",
    "RoleGrant",
    "Status",
    "Team",
    "TeamMembership",
    "Tier",
]
