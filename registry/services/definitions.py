"""Definitions as code: plan a folder against the latest release, then apply it as one release."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import connection, transaction
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Now
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from registry.definitions.changes import MAJOR, FieldChange, classify_change, content_hash
from registry.definitions.contracts import contract_changes
from registry.definitions.dbt_placement import placement_fingerprint
from registry.definitions.objects import governance_of
from registry.definitions.project import (
    CONTRACT,
    METRIC,
    PROJECT,
    SEMANTIC_MODEL,
    DefinitionObject,
    Project,
    meta_of,
)
from registry.definitions.rules import element_columns, metric_inputs, semantic_model_table
from registry.definitions.yaml_source import tree_digest
from registry.models import (
    ChangeKind,
    Definition,
    DefinitionVersion,
    Deprecation,
    Domain,
    Release,
    ReleaseItem,
    Status,
    Team,
    TeamMembership,
)
from registry.services.audit import audit_event_create
from registry.services.review_policy import governance_team
from semantic.compiler.definition_checks import load_project

ADD, CHANGE, RETIRE, RESTORE = "add", "change", "retire", "restore"


@dataclass(frozen=True)
class PlannedChange:
    """What applying the folder would do to one definition."""

    kind: str
    name: str
    action: str
    level: str | None = None
    reasons: tuple[str, ...] = ()
    changes: tuple[FieldChange, ...] = ()
    breaking: tuple[str, ...] = ()
    affected: tuple[str, ...] = ()
    file: str = ""
    line: int = 0

    def describe(self) -> str:
        head = {ADD: "+", CHANGE: "~", RETIRE: "-", RESTORE: "+"}[self.action]
        what = f"{head} {self.kind.replace('_', ' ')} {self.name}"
        if self.action == CHANGE:
            what += f" ({self.level}" + (
                f": {', '.join(self.reasons[:4])})" if self.reasons else ")"
            )
            if self.kind == CONTRACT:
                what += " [breaking]" if self.breaking else " [compatible]"
        elif self.action == RESTORE:
            what += " (restored)"
        return what

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "action": self.action,
            "level": self.level,
            "reasons": list(self.reasons),
            "changes": [c.as_dict() for c in self.changes],
            "breaking": list(self.breaking),
            "affected": list(self.affected),
            "file": self.file,
            "line": self.line,
        }


@dataclass(frozen=True)
class SyncPlan:
    base: int | None
    changes: tuple[PlannedChange, ...]
    unchanged: int
    governance: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.changes and not self.governance

    def counts(self) -> dict[str, int]:
        counts = {ADD: 0, CHANGE: 0, RETIRE: 0, RESTORE: 0}
        for change in self.changes:
            counts[change.action] += 1
        return {**counts, "unchanged": self.unchanged, "governance": len(self.governance)}

    def as_dict(self) -> dict[str, Any]:
        return {
            "base_release": self.base,
            "counts": self.counts(),
            "changes": [c.as_dict() for c in self.changes],
            "governance": list(self.governance),
        }


@dataclass
class SyncResult:
    plan: SyncPlan
    release: Release | None = None
    project: Project | None = field(default=None, repr=False)


# --------------------------------------------------------------------------- planning


def _current_items(release: Release | None) -> dict[tuple[str, str], tuple[int, str]]:
    """(kind, name) → (version id, content hash) of everything a release pins, in one query."""
    if release is None:
        return {}
    rows = ReleaseItem.objects.filter(release=release).values_list(
        "definition__kind", "definition__name", "version_id", "version__content_hash"
    )
    return {(k, n): (vid, h) for k, n, vid, h in rows}


def _affected_by(project: Project, table: str, columns: set[str]) -> tuple[str, ...]:
    """Semantic models and metrics (in the new folder) that read the given columns."""
    models: set[str] = set()
    measures: set[str] = set()
    for sm in project.of_kind(SEMANTIC_MODEL):
        if semantic_model_table(sm) != table:
            continue
        read = {column for column, _ in element_columns(sm)}
        if read & columns or not columns:
            models.add(sm.name)
            measures.update(m["name"] for m in sm.spec.get("measures") or [])
    metrics = {
        m.name
        for m in project.of_kind(METRIC)
        if any(kind == "measure" and name in measures for kind, name, _ in metric_inputs(m.spec))
    }
    # Metrics built on affected metrics are affected too (ratio, derived, cumulative).
    grew = True
    while grew:
        more = {
            m.name
            for m in project.of_kind(METRIC)
            if m.name not in metrics
            and any(k == "metric" and n in metrics for k, n, _ in metric_inputs(m.spec))
        }
        metrics |= more
        grew = bool(more)
    return tuple(
        [f"semantic_model:{n}" for n in sorted(models)] + [f"metric:{n}" for n in sorted(metrics)]
    )


def definitions_plan(*, project: Project, base: Release | None) -> SyncPlan:
    """Compares a parsed folder with a release: added, changed (major/minor), retired."""
    current = _current_items(base)
    retired = set(Definition.objects.filter(status=Status.RETIRED).values_list("kind", "name"))
    changes: list[PlannedChange] = []
    unchanged = 0
    changed_ids: dict[tuple[str, str], int] = {}
    for key, obj in sorted(project.objects.items()):
        if key not in current:
            action = RESTORE if key in retired else ADD
            changes.append(PlannedChange(obj.kind, obj.name, action, file=obj.file, line=obj.line))
        elif current[key][1] != content_hash(obj.spec):
            changed_ids[key] = current[key][0]
        else:
            unchanged += 1
    # Only changed definitions need their old spec: one query for all of them.
    old_specs = dict(
        DefinitionVersion.objects.filter(id__in=changed_ids.values()).values_list("id", "spec")
    )
    for key, version_id in sorted(changed_ids.items()):
        obj = project.objects[key]
        old = old_specs[version_id]
        bump = classify_change(obj.kind, old, obj.spec)
        breaking: tuple[str, ...] = ()
        affected: tuple[str, ...] = ()
        if obj.kind == CONTRACT:
            broken = [c for c in contract_changes(old, obj.spec) if c.breaking]
            breaking = tuple(c.describe() for c in broken)
            hit: list[str] = []
            for table in sorted({c.table for c in broken}):
                cols = {c.column for c in broken if c.table == table and c.column}
                hit.extend(_affected_by(project, table, cols))
            affected = tuple(dict.fromkeys(hit))
        changes.append(
            PlannedChange(
                obj.kind,
                obj.name,
                CHANGE,
                bump.level,
                bump.reasons,
                bump.changes,
                breaking,
                affected,
                obj.file,
                obj.line,
            )
        )
    for key in sorted(set(current) - set(project.objects)):
        changes.append(PlannedChange(key[0], key[1], RETIRE))
    return SyncPlan(
        base=base.number if base else None,
        changes=tuple(changes),
        unchanged=unchanged,
        governance=_governance_changes(project),
    )


def _governance_changes(project: Project) -> tuple[str, ...]:
    teams = {t.slug: t for t in Team.objects.prefetch_related("memberships__user")}
    domains = {d.slug: d for d in Domain.objects.select_related("owner")}
    out: list[str] = []
    for spec in project.teams.values():
        team = teams.get(spec.slug)
        members = {(m.user.username, m.role) for m in team.memberships.all()} if team else set()
        if team is None:
            out.append(f"+ team {spec.slug}")
        elif (team.name, team.email, members) != (spec.name, spec.email, set(spec.members)):
            out.append(f"~ team {spec.slug}")
    for spec in project.domains.values():
        domain = domains.get(spec.slug)
        owner = domain.owner.slug if domain and domain.owner else None
        if domain is None:
            out.append(f"+ domain {spec.slug}")
        elif (domain.name, domain.description, owner, domain.min_approvals) != (
            spec.name,
            spec.description,
            spec.owner,
            spec.min_approvals,
        ):
            out.append(f"~ domain {spec.slug}")
    return tuple(out)


# --------------------------------------------------------------------------- applying


BULK_ANALYZE_THRESHOLD = 500


def deprecation_of(obj: DefinitionObject) -> dict[str, Any] | None:
    """``config.meta.deprecated``: ``true`` or ``{replacement: name, reason: text}``."""
    if obj.kind not in (METRIC, SEMANTIC_MODEL):
        return None
    value = meta_of(obj).get("deprecated")
    if not value:
        return None
    return value if isinstance(value, dict) else {}


def _record_deprecations(
    plan: SyncPlan,
    project: Project,
    heads: dict[tuple[str, str], Definition],
    release: Release,
    author: Any,
) -> None:
    """One Deprecation row per definition that became deprecated in this release."""
    for change in plan.changes:
        obj = project.objects.get((change.kind, change.name))
        info = deprecation_of(obj) if obj is not None else None
        if info is None:
            continue
        head = heads[(change.kind, change.name)]
        replacement = heads.get((change.kind, str(info.get("replacement") or "")))
        already = Deprecation.objects.filter(definition=head, replacement=replacement).exists()
        if not already:
            Deprecation.objects.create(
                definition=head,
                replacement=replacement,
                reason=str(info.get("reason") or ""),
                release=release,
                created_by=author,
            )


def _analyze_registry() -> None:
    with connection.cursor() as cur:
        cur.execute("ANALYZE registry_definition, registry_definitionversion, registry_releaseitem")


def author_of(user: Any) -> Any:
    """The user to record as author, or None for anonymous/system callers."""
    return user if getattr(user, "pk", None) else None


def _apply_governance(project: Project) -> tuple[dict[str, Team], dict[str, Domain]]:
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    teams = {t.slug: t for t in Team.objects.all()}
    for spec in project.teams.values():
        team = teams.get(spec.slug)
        if team is None:
            team = Team.objects.create(slug=spec.slug, name=spec.name, email=spec.email)
            teams[spec.slug] = team
        elif (team.name, team.email) != (spec.name, spec.email):
            team.name, team.email = spec.name, spec.email
            team.save(update_fields=["name", "email"])
        for username, role in spec.members:
            # Members named in YAML get an account that cannot log in until an admin sets a
            # password (or SSO maps it); membership is what review rules need.
            user, created = user_model.objects.get_or_create(username=username)
            if created:
                user.set_unusable_password()
                user.save(update_fields=["password"])
            TeamMembership.objects.update_or_create(team=team, user=user, defaults={"role": role})
    for obj in project.objects.values():
        owner = governance_of(obj.kind, obj.spec).get("owner")
        if owner and owner not in teams:
            teams[owner] = Team.objects.create(slug=owner, name=owner)
    domains = {d.slug: d for d in Domain.objects.all()}
    for spec in project.domains.values():
        owner_team = teams.get(spec.owner) if spec.owner else None
        domain = domains.get(spec.slug)
        if domain is None:
            domains[spec.slug] = Domain.objects.create(
                slug=spec.slug,
                name=spec.name,
                description=spec.description,
                owner=owner_team,
                min_approvals=spec.min_approvals,
            )
        elif (domain.name, domain.description, domain.owner_id, domain.min_approvals) != (
            spec.name,
            spec.description,
            owner_team.pk if owner_team else None,
            spec.min_approvals,
        ):
            domain.name, domain.description, domain.owner = spec.name, spec.description, owner_team
            domain.min_approvals = spec.min_approvals
            domain.save(update_fields=["name", "description", "owner", "min_approvals"])
    for obj in project.objects.values():
        domain_slug = governance_of(obj.kind, obj.spec).get("domain")
        if domain_slug and domain_slug not in domains:
            domains[domain_slug] = Domain.objects.create(slug=domain_slug, name=domain_slug)
    return teams, domains


def _head_fields(
    obj: DefinitionObject, teams: dict[str, Team], domains: dict[str, Domain]
) -> dict[str, Any]:
    meta = governance_of(obj.kind, obj.spec)
    # The project configuration serves every domain and belongs to data governance.
    owner = governance_team() if obj.kind == PROJECT else meta.get("owner")
    spec = obj.spec
    description = spec.get("description") or ""
    if isinstance(description, dict):  # ODCS descriptions are objects (purpose, usage…)
        description = description.get("purpose") or description.get("usage") or ""
    label = str(spec.get("label") or "")[:255]
    return {
        "status": Status.DEPRECATED if deprecation_of(obj) else Status.ACTIVE,
        "search_text": f"{obj.name} {label} {description}".lower(),
        "label": label,
        "description": str(description),
        "metric_type": str(spec.get("type") or "") if obj.kind == METRIC else "",
        "owner": teams.get(str(owner)) if owner else None,
        "domain": domains.get(meta.get("domain")) if meta.get("domain") else None,
        "tier": str(meta.get("tier") or ""),
    }


def release_head_lock() -> Release | None:
    """Locks and returns the newest release (call inside a transaction).

    Serialises concurrent syncs/merges: the release number is taken under a lock on the
    current head, so two writers cannot both publish "the next" release.
    """
    while True:
        head = Release.objects.select_for_update().order_by("-number").first()
        # Under READ COMMITTED, a SELECT … FOR UPDATE that waited for another writer returns
        # the row it first picked (the old head), not the release that writer published; a
        # fresh statement sees it. Lock again until the locked row is the newest one.
        newest = Release.objects.order_by("-number").values_list("pk", flat=True).first()
        if (head.pk if head else None) == newest:
            return head


@transaction.atomic(durable=True)
def definitions_apply(
    *, project: Project, acting_user: Any, note: str = "", digest: str = ""
) -> SyncResult:
    """Applies a checked folder as one new release (all or nothing); no-op when unchanged."""
    base = release_head_lock()
    return definitions_apply_locked(
        project=project, base=base, acting_user=acting_user, note=note, digest=digest
    )


def definitions_apply_locked(
    *,
    project: Project,
    base: Release | None,
    acting_user: Any,
    note: str = "",
    digest: str = "",
    source: str = Release.Source.SYNC,
    certifications: dict[tuple[str, str], tuple[Any, Any]] | None = None,
    version_author: Any = None,
) -> SyncResult:
    """definitions_apply's body, for callers that already hold release_head_lock() in their
    own transaction (proposal_merge). ``certifications`` maps (kind, name) to the
    (user id, time) recorded on the new version; ``version_author`` is who wrote the new
    versions (a proposal's author), when not the acting user (who merged them)."""
    certifications = certifications or {}
    plan = definitions_plan(project=project, base=base)
    if plan.is_empty:
        return SyncResult(plan=plan, release=None, project=project)
    teams, domains = _apply_governance(project)
    if not plan.changes:
        audit_event_create(actor=acting_user, action="governance.sync", payload=plan.as_dict())
        return SyncResult(plan=plan, release=None, project=project)

    heads = {(d.kind, d.name): d for d in Definition.objects.all()}
    # New heads first, in bulk, so that their versions can point at them.
    fresh = [
        Definition(
            kind=c.kind,
            name=c.name,
            **_head_fields(project.objects[(c.kind, c.name)], teams, domains),
        )
        for c in plan.changes
        if c.action != RETIRE and (c.kind, c.name) not in heads
    ]
    fresh_keys = {(h.kind, h.name) for h in fresh}
    for head in bulk_create_with_history(
        fresh, Definition, batch_size=500, default_user=author_of(acting_user)
    ):
        heads[(head.kind, head.name)] = head
    existing_ids = [
        heads[(c.kind, c.name)].pk for c in plan.changes if (c.kind, c.name) not in fresh_keys
    ]
    # Ascending, so that the newest version of each definition is the one the dict keeps
    # (descending kept the oldest: a third version collided with the second's number).
    latest = {
        row["definition_id"]: row
        for row in DefinitionVersion.objects.filter(definition_id__in=existing_ids)
        .order_by("definition_id", "number")
        .values("definition_id", "number", "major", "minor")
    }
    author = author_of(version_author if version_author is not None else acting_user)
    new_versions: list[DefinitionVersion] = []
    touched: list[Definition] = []
    for change in plan.changes:
        key = (change.kind, change.name)
        head = heads[key]
        if key not in fresh_keys:
            touched.append(head)
        if change.action == RETIRE:
            head.status = Status.RETIRED
            continue
        obj = project.objects[key]
        for attr, value in _head_fields(obj, teams, domains).items():
            setattr(head, attr, value)
        prev = latest.get(head.pk)
        if prev is None:
            number, major, minor, kind = 1, 1, 0, ChangeKind.ADDED
        elif change.action == RESTORE or change.level == MAJOR:
            number, major, minor = prev["number"] + 1, prev["major"] + 1, 0
            kind = ChangeKind.RESTORED if change.action == RESTORE else ChangeKind.MAJOR
        else:
            number, major, minor = prev["number"] + 1, prev["major"], prev["minor"] + 1
            kind = ChangeKind.MINOR
        new_versions.append(
            DefinitionVersion(
                definition=head,
                number=number,
                major=major,
                minor=minor,
                change_kind=kind,
                change_summary=change.describe(),
                spec=obj.spec,
                content_hash=content_hash(obj.spec),
                source_file=obj.file[:500],
                source_line=obj.line,
                author=author,
                certified_by_id=certifications.get(key, (None, None))[0],
                certified_at=certifications.get(key, (None, None))[1],
            )
        )
    DefinitionVersion.objects.bulk_create(new_versions, batch_size=500)
    if touched:
        # Only heads that existed before get a history row here; new ones got theirs above.
        bulk_update_with_history(
            touched,
            Definition,
            [
                "label",
                "description",
                "search_text",
                "metric_type",
                "owner",
                "domain",
                "tier",
                "status",
            ],
            batch_size=500,
            default_user=author,
        )
    # The pointer to the newest version is derived data (not in history): one UPDATE.
    newest = DefinitionVersion.objects.filter(definition=OuterRef("pk")).order_by("-number")
    Definition.objects.filter(pk__in=[v.definition_id for v in new_versions]).update(
        current_version=Subquery(newest.values("pk")[:1]),
        # A definition is certified only as far as its newest version is.
        certified_by=Subquery(newest.values("certified_by")[:1]),
        certified_at=Subquery(newest.values("certified_at")[:1]),
        updated_at=Now(),
    )

    release = Release.objects.create(
        number=(base.number + 1) if base else 1,
        parent=base,
        source=source,
        note=note,
        summary={**plan.counts(), "source_digest": digest},
        created_by=author,
    )
    pinned = {k: vid for k, (vid, _) in _current_items(base).items()}
    fresh_ids = {v.definition_id: v.pk for v in new_versions}
    items = [
        ReleaseItem(
            release=release,
            definition=heads[key],
            version_id=fresh_ids.get(heads[key].pk) or pinned[key],
        )
        for key in project.objects
    ]
    ReleaseItem.objects.bulk_create(items, batch_size=1000)
    _record_deprecations(plan, project, heads, release, author)
    if len(new_versions) >= BULK_ANALYZE_THRESHOLD and connection.vendor == "postgresql":
        # Fresh bulk loads leave the planner with no statistics: it then joins every row
        # before LIMIT (60 ms catalog pages at 10k metrics instead of ~5 ms).
        transaction.on_commit(_analyze_registry)
    audit_event_create(
        actor=acting_user,
        action="release.publish",
        release=release,
        payload={"source": str(source), "root": project.root, **plan.as_dict()},
    )
    return SyncResult(plan=plan, release=release, project=project)


def definitions_sync(
    *, root: Path, acting_user: Any, note: str = "", dry_run: bool = False
) -> SyncResult:
    """Parses and checks a folder, then applies it as one release (see definitions_apply).

    When the folder's bytes are those the latest release was synced from, nothing is parsed:
    the answer is "no changes" at the cost of reading the files once.

    Raises:
        DefinitionError: the folder has errors; nothing is written.
    """
    digest = tree_digest(root, placement_fingerprint(root))
    latest = Release.objects.order_by("-number").first()
    if latest is not None and latest.summary.get("source_digest") == digest:
        pinned = ReleaseItem.objects.filter(release=latest).count()
        return SyncResult(plan=SyncPlan(base=latest.number, changes=(), unchanged=pinned))
    project = load_project(root)
    project.issues.checked()
    if dry_run:
        return SyncResult(plan=definitions_plan(project=project, base=latest), project=project)
    return definitions_apply(project=project, acting_user=acting_user, note=note, digest=digest)
