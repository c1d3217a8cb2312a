"""Reads of the registry for pages, the API, the CLI and tasks."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import Prefetch, QuerySet

if TYPE_CHECKING:  # imported where used: they load dbt-semantic-interfaces' validators
    from registry.definitions.export import ExportItem
    from registry.definitions.project import DomainSpec, TeamSpec
from registry.models import (
    AuditEvent,
    Comment,
    Definition,
    DefinitionVersion,
    Domain,
    Kind,
    Proposal,
    ProposalChange,
    ProposalCheck,
    Release,
    ReleaseItem,
    Review,
    Team,
)
from tally.errors import NotFound

LATEST = "latest"


def release_get(ref: str | int | None = None) -> Release:
    """A release by number, ``r12``, or ``latest``/None; NotFound when there is none."""
    if ref in (None, "", LATEST):
        release = Release.objects.order_by("-number").first()
        if release is None:
            raise NotFound(
                "no release yet", code="no_release", hint="run `tally sync DIR` to create one"
            )
        return release
    text = str(ref).lstrip("r")
    if not text.isdigit():
        raise NotFound(
            f"{ref!r} is not a release", code="unknown_release", hint="use r12, 12 or latest"
        )
    release = Release.objects.filter(number=int(text)).first()
    if release is None:
        raise NotFound(f"release r{text} does not exist", code="unknown_release")
    return release


def release_get_latest_or_none() -> Release | None:
    """The newest release, or None before the first sync."""
    return Release.objects.order_by("-number").first()


def release_list() -> QuerySet[Release]:
    """Releases, newest first, with their author."""
    return Release.objects.select_related("created_by").order_by("-number")


def definition_list(
    *,
    kind: str | None = None,
    q: str | None = None,
    owner: str | None = None,
    domain: str | None = None,
    tier: str | None = None,
    status: str | None = None,
) -> QuerySet[Definition]:
    """Definitions filtered for the catalog and the API, with owner, domain and version joined."""
    qs = Definition.objects.select_related(
        "owner", "domain", "current_version", "certified_by"
    ).defer("current_version__spec")
    if kind:
        qs = qs.filter(kind=kind)
    if q:
        qs = qs.filter(search_text__contains=q.lower())
    if owner:
        qs = qs.filter(owner__slug=owner)
    if domain:
        qs = qs.filter(domain__slug=domain)
    if tier:
        qs = qs.filter(tier=tier)
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("kind", "name")


def definition_get(*, kind: str, name: str) -> Definition:
    """One definition with its versions (newest first); NotFound with a hint otherwise."""
    definition = (
        Definition.objects.select_related("owner", "domain", "current_version", "certified_by")
        .prefetch_related(
            Prefetch(
                "versions",
                queryset=DefinitionVersion.objects.select_related(
                    "author", "certified_by"
                ).order_by("-number"),
            )
        )
        .filter(kind=kind, name=name)
        .first()
    )
    if definition is None:
        from registry.definitions.issues import did_you_mean

        names = Definition.objects.filter(kind=kind).values_list("name", flat=True)
        raise NotFound(
            f"no {kind.replace('_', ' ')} named {name!r}",
            code=f"unknown_{kind}",
            hint=did_you_mean(name, list(names)),
        )
    return definition


def definition_version_get(*, definition: Definition, ref: str) -> DefinitionVersion:
    """A version by semver (``2.1``) or number (``#3``); NotFound otherwise."""
    versions = list(definition.versions.all())
    for version in versions:
        if ref in (version.semver, f"#{version.number}", str(version.number)):
            return version
    raise NotFound(
        f"{definition.name} has no version {ref!r}",
        code="unknown_version",
        hint="versions: " + ", ".join(v.semver for v in versions),
    )


def metric_versions_in_release(
    *, release: Release, metrics: Iterable[str] | None = None
) -> dict[str, DefinitionVersion]:
    """Each metric's version in ``release`` (only ``metrics`` when given), by name."""
    items = ReleaseItem.objects.filter(release=release, definition__kind=Kind.METRIC)
    if metrics is not None:
        items = items.filter(definition__name__in=list(metrics))
    return {i.definition.name: i.version for i in items.select_related("definition", "version")}


def release_items_for_export(*, release: Release) -> list[ExportItem]:
    """Every definition a release pins, as specs to write out."""
    from registry.definitions.export import ExportItem

    rows = ReleaseItem.objects.filter(release=release).values_list(
        "definition__kind", "definition__name", "version__spec"
    )
    return [ExportItem(kind, name, spec) for kind, name, spec in rows]


def governance_for_export() -> tuple[list[TeamSpec], list[DomainSpec]]:
    """Teams (with members) and domains as they are now."""
    from registry.definitions.project import DomainSpec, TeamSpec

    teams = [
        TeamSpec(
            t.slug,
            t.name,
            t.email,
            tuple(
                (m.user.username, m.role)
                for m in sorted(t.memberships.all(), key=lambda m: m.user.username)
            ),
        )
        for t in Team.objects.prefetch_related("memberships__user")
    ]
    domains = [
        DomainSpec(
            d.slug, d.name, d.description, d.owner.slug if d.owner else None, d.min_approvals
        )
        for d in Domain.objects.select_related("owner")
    ]
    return teams, domains


# --------------------------------------------------------------------------- review workflow


@dataclass(frozen=True)
class PinnedSpec:
    """One definition as a release pins it."""

    spec: dict[str, Any]
    version_id: int
    semver: str
    major: int
    certified_by_id: int | None
    certified_at: Any


def release_specs(
    *, release: Release | None, keys: Iterable[tuple[str, str]] | None = None
) -> dict[tuple[str, str], PinnedSpec]:
    """(kind, name) → the pinned version's spec and certification, in one query (only the
    given keys when ``keys`` is set: a proposal page must not read the whole release)."""
    if release is None:
        return {}
    items = ReleaseItem.objects.filter(release=release)
    wanted = set(keys) if keys is not None else None
    if wanted is not None:
        items = items.filter(definition__name__in={name for _, name in wanted})
    rows = items.values_list(
        "definition__kind",
        "definition__name",
        "version__spec",
        "version_id",
        "version__major",
        "version__minor",
        "version__certified_by_id",
        "version__certified_at",
    )
    return {
        (kind, name): PinnedSpec(spec, vid, f"{major}.{minor}", major, cert_by, cert_at)
        for kind, name, spec, vid, major, minor, cert_by, cert_at in rows
        if wanted is None or (kind, name) in wanted
    }


def proposal_list(*, state: str | None = None, author: str | None = None) -> QuerySet[Proposal]:
    """Proposals newest first, with author and releases joined (one query per page)."""
    qs = Proposal.objects.select_related("author", "base_release", "merged_release")
    if state:
        qs = qs.filter(state=state)
    if author:
        qs = qs.filter(author__username=author)
    return qs.order_by("-id")


def proposal_get(*, proposal_id: int | str) -> Proposal:
    """One proposal with author and releases; NotFound otherwise."""
    text = str(proposal_id).lstrip("#")
    proposal = (
        Proposal.objects.select_related("author", "base_release", "merged_release", "merged_by")
        .filter(pk=int(text))
        .first()
        if text.isdigit()
        else None
    )
    if proposal is None:
        raise NotFound(
            f"proposal {proposal_id!r} does not exist",
            code="unknown_proposal",
            hint="list them with `tally proposals` or GET /api/v1/proposals",
        )
    return proposal


def proposal_changes(*, proposal: Proposal, revision: int | None = None) -> list[ProposalChange]:
    """The change set of one revision (default: the current one), by kind and name."""
    return list(
        ProposalChange.objects.filter(
            proposal=proposal, revision=revision or proposal.revision
        ).order_by("kind", "name")
    )


def proposal_revisions(*, proposal: Proposal) -> dict[int, list[ProposalChange]]:
    """Every revision's change set, oldest first."""
    out: dict[int, list[ProposalChange]] = {}
    for change in ProposalChange.objects.filter(proposal=proposal).order_by(
        "revision", "kind", "name"
    ):
        out.setdefault(change.revision, []).append(change)
    return out


def proposal_reviews(*, proposal: Proposal) -> list[Review]:
    """Reviews oldest first, with reviewers."""
    return list(Review.objects.filter(proposal=proposal).select_related("reviewer").order_by("id"))


def proposal_comments(*, proposal: Proposal) -> list[Comment]:
    """Comments oldest first, with authors."""
    return list(Comment.objects.filter(proposal=proposal).select_related("author").order_by("id"))


def proposal_checks(*, proposal: Proposal, revision: int | None = None) -> list[ProposalCheck]:
    """The checks of one revision (default: current), in kind order."""
    return list(
        ProposalCheck.objects.filter(
            proposal=proposal, revision=revision or proposal.revision
        ).order_by("kind")
    )


def proposal_timeline(*, proposal: Proposal) -> list[AuditEvent]:
    """Everything that happened to a proposal, oldest first (from the audit log)."""
    return list(
        AuditEvent.objects.filter(object_kind="proposal", object_name=str(proposal.pk))
        .select_related("actor", "release")
        .order_by("at", "id")
    )
