"""Reads of the registry for pages, the API, the CLI and tasks."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from registry.definitions.export import ExportItem
from registry.definitions.project import DomainSpec, TeamSpec
from registry.models import Definition, DefinitionVersion, Domain, Release, ReleaseItem, Team
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
    qs = Definition.objects.select_related("owner", "domain", "current_version").defer(
        "current_version__spec"
    )
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
        Definition.objects.select_related("owner", "domain", "current_version")
        .prefetch_related(
            Prefetch(
                "versions",
                queryset=DefinitionVersion.objects.select_related("author").order_by("-number"),
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


def release_items_for_export(*, release: Release) -> list[ExportItem]:
    """Every definition a release pins, as specs to write out."""
    rows = ReleaseItem.objects.filter(release=release).values_list(
        "definition__kind", "definition__name", "version__spec"
    )
    return [ExportItem(kind, name, spec) for kind, name, spec in rows]


def governance_for_export() -> tuple[list[TeamSpec], list[DomainSpec]]:
    """Teams (with members) and domains as they are now."""
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
        DomainSpec(d.slug, d.name, d.description, d.owner.slug if d.owner else None)
        for d in Domain.objects.select_related("owner")
    ]
    return teams, domains
