"""READS for the web UI's registry pages: catalog, metric page, contracts, proposals.

Each page asks one function here; they build on the selectors and services the API uses
(registry/selectors.py, registry/services/proposals.py, review_policy.py) and add only what
a page shows beside them (facet counts, release ranges, rights).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, F, Q, QuerySet

from registry import rights
from registry.definitions.changes import classify_change, diff_specs
from registry.definitions.export import dump_yaml
from registry.models import (
    Definition,
    DefinitionVersion,
    Deprecation,
    Kind,
    Proposal,
    ProposalChange,
    ReleaseItem,
    Status,
    Team,
    Tier,
)
from registry.selectors import (
    definition_get,
    proposal_get,
    proposal_list,
    release_get_latest_or_none,
)
from registry.services.proposals import proposal_overview
from registry.services.review_policy import Policy, approvals_by_team, current_reviews

CATALOG_PAGE_SIZE = 50
# Facets of the catalog: (query parameter, the field counted, how a value is shown).
FACETS = (
    ("owner", "owner__slug"),
    ("domain", "domain__slug"),
    ("tier", "tier"),
    ("status", "status"),
)


@dataclass(frozen=True)
class CatalogFilters:
    q: str = ""
    owner: str = ""
    domain: str = ""
    tier: str = ""
    status: str = ""
    kind: str = Kind.METRIC
    offset: int = 0


@dataclass(frozen=True)
class CatalogPage:
    filters: CatalogFilters
    rows: list[Definition]
    total: int
    facets: dict[str, list[tuple[str, int]]]
    replacements: dict[int, str]
    next_offset: int | None


def _search(qs: QuerySet[Definition], q: str) -> QuerySet[Definition]:
    # Every word must match somewhere: name/label/description (pre-lowered search_text, a
    # trigram index on PostgreSQL) or the owner, domain or tier, so "finance certified" works.
    for word in q.lower().split()[:8]:
        qs = qs.filter(
            Q(search_text__contains=word)
            | Q(owner__slug__contains=word)
            | Q(domain__slug__contains=word)
            | Q(tier=word)
        )
    return qs


def _filtered(f: CatalogFilters, *, skip: str = "") -> QuerySet[Definition]:
    qs = _search(Definition.objects.filter(kind=f.kind), f.q)
    for param, column in FACETS:
        value = getattr(f, param)
        if value and param != skip:
            qs = qs.filter(**{column: value})
    return qs


def catalog_page_get(*, filters: CatalogFilters) -> CatalogPage:
    """One catalog page: matching definitions (retired ones only when asked), facet counts
    (each facet counted with the other facets applied), and the replacement of each
    deprecated row."""
    qs = _filtered(filters)
    if not filters.status:
        qs = qs.exclude(status=Status.RETIRED)
    total = qs.count()
    rows = list(
        qs.select_related("owner", "domain", "current_version", "certified_by")
        .defer("current_version__spec", "search_text")
        .order_by("name")[filters.offset : filters.offset + CATALOG_PAGE_SIZE]
    )
    facets: dict[str, list[tuple[str, int]]] = {}
    for param, column in FACETS:
        counts = (
            _filtered(filters, skip=param)
            .exclude(**{f"{column}__isnull": True})
            .exclude(**{column: ""})
            .values_list(column)
            .annotate(n=Count("id"))
            .order_by(column)
        )
        facets[param] = [(str(value), n) for value, n in counts]
    deprecated = [r.pk for r in rows if r.status == Status.DEPRECATED]
    replacements: dict[int, str] = {}
    if deprecated:
        for def_id, name in (
            Deprecation.objects.filter(definition_id__in=deprecated, replacement__isnull=False)
            .order_by("id")
            .values_list("definition_id", "replacement__name")
        ):
            replacements[def_id] = name
    end = filters.offset + len(rows)
    return CatalogPage(filters, rows, total, facets, replacements, end if end < total else None)


# --------------------------------------------------------------------------- one definition


@dataclass(frozen=True)
class VersionRow:
    version: DefinitionVersion
    level: str
    changes: list[dict[str, Any]]
    releases: str
    proposal: Proposal | None = None  # the merged proposal that published this version


@dataclass
class DefinitionPage:
    definition: Definition
    spec_yaml: str
    versions: list[VersionRow]
    releases: list[str]
    owner_members: list[tuple[str, str]]
    replacement: str | None
    deprecation_reason: str
    may_propose: bool
    extra: dict[str, Any] = field(default_factory=dict)
    # Unmerged proposals whose current revision changes this definition.
    open_proposals: list[Proposal] = field(default_factory=list)


def _ranges(numbers: list[int]) -> str:
    """[1, 2, 3, 5] → 'r1–r3, r5'."""
    out: list[str] = []
    for n in sorted(numbers):
        if out and out[-1].endswith(f"r{n - 1}") and "–" in out[-1]:
            out[-1] = out[-1].rsplit("–", 1)[0] + f"–r{n}"
        elif out and out[-1] == f"r{n - 1}":
            out[-1] = f"r{n - 1}–r{n}"
        else:
            out.append(f"r{n}")
    return ", ".join(out)


def spec_as_yaml(kind: str, spec: dict[str, Any] | None) -> str:
    """A spec as the YAML file a user would write (dbt `metrics:` list, or ODCS as is)."""
    if spec is None:
        return ""
    body: Any = spec
    if kind == Kind.METRIC:
        body = {"metrics": [spec]}
    elif kind == Kind.SEMANTIC_MODEL:
        body = {"semantic_models": [spec]}
    elif kind == Kind.SAVED_QUERY:
        body = {"saved_queries": [spec]}
    # As `tally export` writes it (multi-line filters as block scalars).
    return dump_yaml(body)


def definition_page_get(*, kind: str, name: str, user: Any) -> DefinitionPage:
    """A definition with its YAML, each version's diff against the one before, the releases
    each version is pinned in, the owning team's members and any replacement."""
    definition = definition_get(kind=kind, name=name)
    versions = list(definition.versions.all())  # newest first
    pinned: dict[int, list[int]] = {}
    for version_id, number in ReleaseItem.objects.filter(definition=definition).values_list(
        "version_id", "release__number"
    ):
        pinned.setdefault(version_id, []).append(number)
    # A version is published by the release that first pins it; a proposal merged as that
    # release is where it was written and reviewed.
    first_release = {vid: min(numbers) for vid, numbers in pinned.items()}
    by_release = {
        p.merged_release.number: p
        for p in Proposal.objects.filter(
            merged_release__number__in=set(first_release.values())
        ).select_related("merged_release", "author", "merged_by")
    }
    rows = []
    for i, version in enumerate(versions):
        older = versions[i + 1] if i + 1 < len(versions) else None
        if older is None:
            level, changes = "added", []
        else:
            bump = classify_change(kind, older.spec, version.spec)
            level = bump.level if bump.changes else "none"
            changes = [c.as_dict() for c in diff_specs(older.spec, version.spec)]
        proposal = by_release.get(first_release.get(version.pk, -1))
        rows.append(
            VersionRow(version, level, changes, _ranges(pinned.get(version.pk, [])), proposal)
        )
    members: list[tuple[str, str]] = []
    if definition.owner_id:
        team = Team.objects.prefetch_related("memberships__user").get(pk=definition.owner_id)
        members = sorted((m.user.username, m.role) for m in team.memberships.all())
    deprecation = (
        Deprecation.objects.filter(definition=definition)
        .select_related("replacement")
        .order_by("-id")
        .first()
    )
    all_releases = sorted({n for ns in pinned.values() for n in ns}, reverse=True)
    return DefinitionPage(
        definition=definition,
        spec_yaml=spec_as_yaml(kind, definition.current_version.spec)
        if definition.current_version
        else "",
        versions=rows,
        releases=[f"r{n}" for n in all_releases],
        owner_members=members,
        replacement=deprecation.replacement.name
        if deprecation and deprecation.replacement
        else None,
        deprecation_reason=deprecation.reason if deprecation else "",
        may_propose=rights.may_propose(user, definition) and definition.status != Status.RETIRED,
        open_proposals=proposals_touching(kind=kind, name=name),
    )


def proposals_touching(*, kind: str, name: str, exclude: int | None = None) -> list[Proposal]:
    """Unmerged proposals whose current revision changes (kind, name), oldest first: the
    banner that warns two proposals change the same definition."""
    ids = ProposalChange.objects.filter(
        kind=kind,
        name=name,
        proposal__state__in=rights.UNMERGED_STATES,
        revision=F("proposal__revision"),
    ).values_list("proposal_id", flat=True)
    found = Proposal.objects.filter(pk__in=ids).select_related("author").order_by("pk")
    return [p for p in found if p.pk != exclude]


def contract_list_get() -> list[Definition]:
    """Every live contract with owner and domain, by name."""
    return list(
        Definition.objects.filter(kind=Kind.CONTRACT)
        .exclude(status=Status.RETIRED)
        .select_related("owner", "domain", "current_version")
        .order_by("name")
    )


# --------------------------------------------------------------------------- proposals


@dataclass(frozen=True)
class ProposalRights:
    review: bool
    merge: bool
    close: bool
    open: bool
    comment: bool
    rerun_checks: bool
    revise: bool = False
    rebase: bool = False


def proposal_rights_get(
    *, user: Any, proposal: Proposal, policy: Policy, stale: bool = False
) -> ProposalRights:
    """Which buttons a user gets on a proposal (each decision is one function in rights)."""
    return ProposalRights(
        revise=rights.may_revise(user, proposal),
        rebase=rights.may_rebase(user, proposal, policy, stale=stale),
        review=rights.may_review(user, proposal, policy),
        merge=rights.may_merge(user, proposal, policy),
        close=rights.may_close(user, proposal, policy),
        open=rights.may_open(user, proposal),
        comment=rights.may_comment(user, proposal),
        rerun_checks=rights.may_rerun_checks(user, proposal, policy),
    )


def proposal_page_get(*, proposal_id: int, user: Any) -> dict[str, Any]:
    """proposal_overview (what the API returns) plus the checks by kind and the user's rights."""
    overview = proposal_overview(proposal=proposal_get(proposal_id=proposal_id))
    proposal = overview["proposal"]
    policy = Policy(
        tuple(overview["policy"]["required_teams"]),
        overview["policy"]["min_approvals"],
        tuple(overview["policy"]["certifies"]),
        overview["policy"]["reasons"],
        tuple(overview["policy"]["declassifies"]),
        tuple(overview["policy"]["declassify_teams"]),
    )
    from registry.permissions import principal_for
    from semantic.charts import numbers_diff_chart
    from semantic.permissions import checks_visible

    # The numbers diff holds stored totals over every tenant: shown as the user may read them.
    overview["checks"] = checks_visible(overview["checks"], principal=principal_for(user))
    checks = {c.kind: c for c in overview["checks"]}
    for change in overview["changes"]:
        change["yaml"] = spec_as_yaml(change["kind"], change["spec"])
    numbers = checks.get("numbers")
    if numbers is not None:
        # A page-local copy: the chart spec is shown, never stored with the check.
        details = dict(numbers.details or {})
        details["metrics"] = [
            {**m, "chart": numbers_diff_chart(m.get("by_month") or [], metric=m["metric"])}
            for m in details.get("metrics") or []
        ]
        numbers.details = details
    discussion = [
        {"who": r.reviewer.username, "verdict": r.verdict, "body": r.body, "at": r.created_at,
         "revision": r.revision, "dismissed": r.dismissed, "certifies": r.certifies, "anchor": ""}
        for r in overview["reviews"]
    ] + [
        {"who": c.author.username, "verdict": "", "body": c.body, "at": c.created_at,
         "revision": c.revision, "dismissed": False, "certifies": False,
         "anchor": f"{c.definition_kind}:{c.definition_name} {c.field_path}".strip()
         if c.definition_kind else ""}
        for c in overview["comments"]
    ]  # fmt: skip
    discussion.sort(key=lambda item: item["at"])
    # A release published after the proposal's base: its approvals were given against an
    # older release, and a rebase merges what changed there field by field.
    latest = release_get_latest_or_none()
    stale = (
        proposal.state in rights.UNMERGED_STATES
        and latest is not None
        and proposal.base_release_id != latest.pk
    )
    for change in overview["changes"]:
        change["path"] = change.get("file") or f"{change['kind']}s/{change['name']}.yml"
        change["others"] = (
            proposals_touching(kind=change["kind"], name=change["name"], exclude=proposal.pk)
            if proposal.state in rights.UNMERGED_STATES
            else []
        )
    return {
        **overview,
        "checks_by_kind": checks,
        "discussion": discussion,
        "rights": proposal_rights_get(user=user, proposal=proposal, policy=policy, stale=stale),
        "latest_release": latest.name if latest else "",
        "team_approvals": approvals_by_team(proposal, policy),
        "approvals_given": sum(1 for r in current_reviews(proposal) if r.verdict == "approve"),
        "stale": stale,
    }


def proposal_list_get(*, state: str = "") -> list[Proposal]:
    """Proposals newest first (at most 200) with their change counts."""
    return list(
        proposal_list(state=state or None).annotate(
            n_changes=Count("changes", filter=Q(changes__revision=F("revision")))
        )[:200]
    )


TIERS = Tier.values


# --------------------------------------------------------------------------- contract page


def _latest_audits(prefix: str) -> dict[str, list[Any]]:
    """The newest result of each (check, target) under a target prefix, by target."""
    from semantic.models import AuditResult

    seen: set[tuple[str, str]] = set()
    out: dict[str, list[Any]] = {}
    for result in AuditResult.objects.filter(target__startswith=prefix).order_by("-id")[:1000]:
        if (result.check_name, result.target) in seen:
            continue
        seen.add((result.check_name, result.target))
        out.setdefault(result.target, []).append(result)
    return out


def contract_page_get(*, name: str, user: Any) -> dict[str, Any]:
    """A contract's schema (PII marked), quality rules with their latest audit, SLA with the
    latest freshness result, and its consumers from lineage."""
    from lineage.selectors import lineage_impact
    from tally.errors import UserError

    page = definition_page_get(kind=Kind.CONTRACT, name=name, user=user)
    spec = page.definition.current_version.spec if page.definition.current_version else {}
    audits = _latest_audits(f"{name}:")
    servers = spec.get("servers") or [{}]
    schema = servers[0].get("schema") or "main"
    objects = []
    for obj in spec.get("schema") or []:
        table = obj.get("physicalName") or obj.get("name")
        columns = []
        for prop in obj.get("properties") or []:
            column = prop.get("physicalName") or prop.get("name")
            columns.append(
                {
                    **prop,
                    "pii": str(prop.get("classification", "")).lower() == "pii",
                    # The warehouse column's lineage id: its impact page lists what reads it.
                    "lineage_node": f"column:{schema}.{table}.{column}",
                    "audits": audits.get(f"{name}:{table}.{column}", []),
                }
            )
        objects.append({**obj, "columns": columns, "audits": audits.get(f"{name}:{table}", [])})
    freshness = [a for results in audits.values() for a in results if a.check_name == "freshness"]
    consumers: dict[str, Any] = {"metrics": [], "models": [], "owners": [], "error": ""}
    try:
        report = lineage_impact(node=f"contract:{name}")
    except UserError as exc:
        consumers["error"] = exc.message
    else:
        consumers["metrics"] = sorted(
            {m.split(":", 1)[1].split("@")[0] for m in report.impact.metrics}
        )
        # A contract reaches its columns, and they the semantic models' entities, dimensions
        # and measures (ids `kind:model.element`); the model nodes hang off the table.
        consumers["models"] = sorted(
            {
                rest.split(".", 1)[0] if kind != "semantic_model" else rest
                for kind, _, rest in (n.partition(":") for n in report.impact.nodes)
                if kind in ("semantic_model", "entity", "dimension", "measure")
            }
        )
        consumers["owners"] = list(report.impact.owners)
    all_audits = sorted(
        (a for results in audits.values() for a in results),
        key=lambda a: (a.status == "pass", a.target, a.check_name),
    )
    return {
        "page": page,
        "spec": spec,
        "objects": objects,
        "sla": spec.get("slaProperties") or [],
        "freshness": freshness,
        "audits": all_audits,
        "consumers": consumers,
    }
