"""Proposals: a reviewed change set of definitions that merges into a new release.

State machine: draft → open ⇄ changes_requested / approved → merged, or closed from any
unmerged state. Every service here is one durable transaction with an audit row
(``object_kind="proposal"``, which is also the proposal's timeline); checks and e-mails are
enqueued on commit, so a rolled-back write never announces anything.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from django.db import transaction
from django.utils import timezone

from registry.definitions.changes import classify_change, content_hash, diff_specs
from registry.definitions.issues import IssueSet
from registry.definitions.merge import merge3
from registry.definitions.project import KINDS, DefinitionObject, Project, load_project
from registry.definitions.rules import check_definition_expressions
from registry.models import (
    Comment,
    Definition,
    Proposal,
    ProposalChange,
    ProposalCheck,
    Release,
    Review,
)
from registry.selectors import PinnedSpec, proposal_changes, release_specs
from registry.services.audit import audit_event_create
from registry.services.definitions import (
    ADD,
    CHANGE,
    RESTORE,
    RETIRE,
    definitions_apply_locked,
    definitions_plan,
    release_head_lock,
)
from registry.services.review_policy import (
    CERTIFIED,
    approval_blockers,
    can_review,
    current_reviews,
    governance_team,
    merge_blockers,
    needs_certification,
    proposal_policy_get,
    team_slugs_of,
)
from tally.errors import ConflictError, NotFound, PermissionDenied, ReviewError, UserError

MAX_FILES = 200
MAX_FILE_BYTES = 5 * 1024 * 1024
UNMERGED = (
    Proposal.State.DRAFT,
    Proposal.State.OPEN,
    Proposal.State.CHANGES_REQUESTED,
    Proposal.State.APPROVED,
)
REVIEWABLE = (Proposal.State.OPEN, Proposal.State.CHANGES_REQUESTED, Proposal.State.APPROVED)

NOT_OPEN = "proposal #{id} is {state}; only {allowed} proposals can be {verb}"
SELF_REVIEW = "you cannot review your own proposal"
NOT_A_REVIEWER = "{user} is not a member of a team that reviews this proposal"
STALE_BASE = "proposal #{id} is based on {base}, but the latest release is {latest}"
MERGE_BLOCKED = "proposal #{id} cannot merge yet: {first}"
NO_CHANGES = "nothing to propose: every definition given matches the latest release"


@dataclass(frozen=True)
class ProposedDefinition:
    """One definition a proposal adds, changes (``spec``) or retires (``spec`` None)."""

    kind: str
    name: str
    spec: dict[str, Any] | None
    file: str = ""
    line: int = 0


# --------------------------------------------------------------------------- parsing


def _safe_relative(name: str) -> str:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise UserError(
            f"file name {name!r} must be a relative path inside the proposal",
            code="bad_file_name",
            location=f"files.{name}",
        )
    if path.suffix not in (".yml", ".yaml"):
        raise UserError(
            f"file {name!r} is not YAML", code="bad_file_name", hint="name it *.yml or *.yaml"
        )
    return str(path)


def proposed_from_files(files: Mapping[str, str]) -> list[ProposedDefinition]:
    """Parses YAML texts (dbt Semantic Layer or ODCS) into canonical specs.

    Raises:
        DefinitionError: a file does not parse or breaks the spec's schema (with file:line).
    """
    if not files:
        raise UserError("a proposal needs at least one file", code="no_files")
    if len(files) > MAX_FILES:
        raise UserError(f"at most {MAX_FILES} files per proposal", code="too_many_files")
    with tempfile.TemporaryDirectory(prefix="tally-proposal-") as tmp:
        root = Path(tmp)
        for name, text in files.items():
            rel = _safe_relative(name)
            if len(text.encode("utf-8")) > MAX_FILE_BYTES:
                raise UserError(f"{rel} is over 5 MB", code="file_too_large", location=rel)
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        # Cross-object rules need the whole release: the validation check runs them.
        project = load_project(root, validate=False)
        # Security hook (issue 18): refuse unchecked definition expressions with file:line
        # before the proposal exists, so no check ever runs them on the warehouse.
        check_definition_expressions(project)
    prefix = f"{root.name}/"

    def shown(file: str) -> str:
        # Paths as the caller named them, not under the temporary folder.
        return file[len(prefix) :] if file.startswith(prefix) else file

    issues = IssueSet()
    issues.extend(dataclasses.replace(i, file=shown(i.file)) for i in project.issues.issues)
    issues.checked()
    return [
        ProposedDefinition(o.kind, o.name, o.spec, shown(o.file), o.line)
        for o in project.objects.values()
    ]


def _deletions(items: Iterable[str]) -> list[ProposedDefinition]:
    out = []
    for item in items:
        kind, _, name = str(item).partition(":")
        if kind not in KINDS or not name:
            raise UserError(
                f"cannot retire {item!r}",
                code="bad_deletion",
                hint="name it kind:name, e.g. metric:mrr",
            )
        out.append(ProposedDefinition(kind, name, None))
    return out


def _only_real_changes(
    proposed: Iterable[ProposedDefinition], base: Mapping[tuple[str, str], PinnedSpec]
) -> list[ProposedDefinition]:
    """Drops definitions identical to the base; refuses retiring what the base lacks."""
    out = []
    for item in proposed:
        old = base.get((item.kind, item.name))
        if item.spec is None:
            if old is None:
                raise NotFound(
                    f"{item.kind} {item.name!r} is not in the base release",
                    code="unknown_definition",
                )
        elif old is not None and content_hash(old.spec) == content_hash(item.spec):
            continue
        out.append(item)
    return out


# --------------------------------------------------------------------------- helpers


def _require_user(user: Any) -> None:
    if not getattr(user, "pk", None):
        raise PermissionDenied("sign in to work on proposals", code="not_authenticated")


def _lock(proposal: Proposal | int) -> Proposal:
    """Re-reads the proposal under a row lock (its state may have moved since it was read)."""
    pk = proposal.pk if isinstance(proposal, Proposal) else int(proposal)
    found = Proposal.objects.select_for_update().filter(pk=pk).first()
    if found is None:
        raise NotFound(f"proposal {pk} does not exist", code="unknown_proposal")
    return found


def _require_state(proposal: Proposal, allowed: Sequence[str], verb: str) -> None:
    if proposal.state in allowed:
        return
    error = ConflictError if proposal.state == Proposal.State.MERGED else ReviewError
    raise error(
        NOT_OPEN.format(id=proposal.pk, state=proposal.state, allowed="/".join(allowed), verb=verb),
        code="proposal_merged" if proposal.state == Proposal.State.MERGED else "proposal_not_open",
    )


def _audit(proposal: Proposal, user: Any, action: str, **payload: Any) -> None:
    audit_event_create(
        actor=user,
        action=f"proposal.{action}",
        object_kind="proposal",
        object_name=str(proposal.pk),
        release=payload.pop("release", None),
        payload={"revision": proposal.revision, "state": proposal.state, **payload},
    )


def _write_changes(proposal: Proposal, items: Iterable[ProposedDefinition]) -> int:
    rows = [
        ProposalChange(
            proposal=proposal,
            revision=proposal.revision,
            kind=i.kind,
            name=i.name,
            spec=i.spec,
            content_hash=content_hash(i.spec) if i.spec is not None else "",
            source_file=i.file[:500],
            source_line=i.line,
        )
        for i in items
    ]
    ProposalChange.objects.bulk_create(rows)
    return len(rows)


def _enqueue_checks(proposal: Proposal) -> None:
    """Creates the pending checks of the current revision and runs them after commit."""
    from registry import tasks

    ids = []
    for kind in ProposalCheck.CheckKind.values:
        # Unique (proposal, revision, kind): opening twice never doubles a check.
        check, _ = ProposalCheck.objects.get_or_create(
            proposal=proposal, revision=proposal.revision, kind=kind
        )
        ids.append(check.pk)
    for check_id in ids:
        transaction.on_commit(lambda check_id=check_id: tasks.run_proposal_check.delay(check_id))


def _notify(proposal: Proposal, event: str) -> None:
    from registry import tasks

    pk = proposal.pk
    transaction.on_commit(lambda: tasks.send_proposal_notification.delay(pk, event))


def _summary(items: Sequence[ProposedDefinition]) -> list[str]:
    return [f"{'-' if i.spec is None else '~'} {i.kind}:{i.name}" for i in items]


# --------------------------------------------------------------------------- services


@transaction.atomic(durable=True)
def proposal_create(
    *,
    acting_user: Any,
    title: str,
    description: str = "",
    files: Mapping[str, str] | None = None,
    retire: Sequence[str] = (),
    proposed: Sequence[ProposedDefinition] | None = None,
    open_now: bool = True,
) -> Proposal:
    """Creates a proposal against the latest release from YAML texts (or parsed definitions),
    opening it unless ``open_now`` is False; definitions equal to the release are dropped."""
    _require_user(acting_user)
    if not title.strip():
        raise UserError("a proposal needs a title", code="no_title", location="title")
    items = list(proposed) if proposed is not None else []
    if files:
        items += proposed_from_files(files)
    items += _deletions(retire)
    base_release = Release.objects.order_by("-number").first()
    items = _only_real_changes(
        items, release_specs(release=base_release, keys=[(i.kind, i.name) for i in items])
    )
    if not items:
        raise UserError(NO_CHANGES, code="no_changes", hint="edit a definition, then propose it")
    proposal = Proposal(
        title=title.strip()[:200],
        description=description,
        author=acting_user,
        base_release=base_release,
        state=Proposal.State.OPEN if open_now else Proposal.State.DRAFT,
    )
    proposal.full_clean()
    proposal.save()
    _write_changes(proposal, items)
    _require_propose_in_domains(acting_user, proposal)
    _audit(proposal, acting_user, "create", changes=_summary(items))
    if open_now:
        _enqueue_checks(proposal)
        _notify(proposal, "opened")
    return proposal


def proposal_create_from_folder(
    *, acting_user: Any, root: Path, title: str = "", description: str = ""
) -> Proposal:
    """A proposal that makes the latest release match a whole folder (`tally sync --propose`):
    added, changed and restored definitions, and retirement of those the folder lacks.

    Raises:
        DefinitionError: the folder has errors (as `tally validate` reports them).
    """
    project = load_project(root)
    project.issues.checked()
    base = Release.objects.order_by("-number").first()
    plan = definitions_plan(project=project, base=base)
    items = []
    for change in plan.changes:
        if change.action == RETIRE:
            items.append(ProposedDefinition(change.kind, change.name, None))
        elif change.action in (ADD, CHANGE, RESTORE):
            obj = project.objects[(change.kind, change.name)]
            items.append(ProposedDefinition(obj.kind, obj.name, obj.spec, obj.file, obj.line))
    return proposal_create(
        acting_user=acting_user,
        title=title or f"Sync {root.name}",
        description=description,
        proposed=items,
    )


@transaction.atomic(durable=True)
def proposal_update(
    *,
    proposal: Proposal,
    acting_user: Any,
    files: Mapping[str, str] | None = None,
    retire: Sequence[str] = (),
    replace: bool = False,
) -> Proposal:
    """Adds a revision (the author's edit): earlier reviews are dismissed, checks re-run.

    By default the given definitions are laid over the current revision's; ``replace``
    makes them the whole change set."""
    _require_user(acting_user)
    proposal = _lock(proposal)
    _require_state(proposal, UNMERGED, "edited")
    if proposal.author_id != acting_user.pk:
        raise PermissionDenied(
            "only the author can edit a proposal", code="not_author", hint="comment instead"
        )
    new = (proposed_from_files(files) if files else []) + _deletions(retire)
    if not new:
        raise UserError("give at least one file or retirement", code="no_files")
    keep = (
        {}
        if replace
        else {
            (c.kind, c.name): ProposedDefinition(
                c.kind, c.name, c.spec, c.source_file, c.source_line
            )
            for c in proposal_changes(proposal=proposal)
        }
    )
    for item in new:
        keep[(item.kind, item.name)] = item
    items = _only_real_changes(
        keep.values(), release_specs(release=proposal.base_release, keys=list(keep))
    )
    if not items:
        raise UserError(NO_CHANGES, code="no_changes")
    proposal.revision += 1
    _dismiss_reviews(proposal)
    if proposal.state in (Proposal.State.APPROVED, Proposal.State.CHANGES_REQUESTED):
        proposal.state = Proposal.State.OPEN
    proposal.save(update_fields=["revision", "state", "updated_at"])
    _write_changes(proposal, items)
    _require_propose_in_domains(acting_user, proposal)
    _audit(proposal, acting_user, "update", changes=_summary(items))
    if proposal.state != Proposal.State.DRAFT:
        _enqueue_checks(proposal)
    return proposal


def _dismiss_reviews(proposal: Proposal) -> int:
    # Approvals were given to what the proposal said then; a new revision needs new ones.
    return Review.objects.filter(proposal=proposal, dismissed=False).update(dismissed=True)


@transaction.atomic(durable=True)
def proposal_open(*, proposal: Proposal, acting_user: Any) -> Proposal:
    """Opens a draft for review: checks start and reviewers are notified."""
    _require_user(acting_user)
    proposal = _lock(proposal)
    _require_state(proposal, (Proposal.State.DRAFT,), "opened")
    if proposal.author_id != acting_user.pk:
        raise PermissionDenied("only the author can open a proposal", code="not_author")
    proposal.state = Proposal.State.OPEN
    proposal.save(update_fields=["state", "updated_at"])
    _audit(proposal, acting_user, "open")
    _enqueue_checks(proposal)
    _notify(proposal, "opened")
    return proposal


def _state_after_reviews(proposal: Proposal) -> str:
    reviews = current_reviews(proposal)
    if any(r.verdict == Review.Verdict.REQUEST_CHANGES for r in reviews):
        return Proposal.State.CHANGES_REQUESTED
    if not approval_blockers(proposal, proposal_policy_get(proposal=proposal)):
        return Proposal.State.APPROVED
    return Proposal.State.OPEN


@transaction.atomic(durable=True)
def proposal_review(
    *, proposal: Proposal, acting_user: Any, verdict: str, body: str = ""
) -> Review:
    """Records an approval or a request for changes by a member of a required team.

    An approval by data governance certifies the certified-tier definitions it covers."""
    _require_user(acting_user)
    proposal = _lock(proposal)
    _require_state(proposal, REVIEWABLE, "reviewed")
    if verdict not in Review.Verdict.values:
        raise UserError(
            f"unknown verdict {verdict!r}",
            code="bad_verdict",
            hint="approve or request_changes",
            location="verdict",
        )
    if proposal.author_id == acting_user.pk:
        raise PermissionDenied(SELF_REVIEW, code="self_review", hint="ask a reviewer instead")
    policy = proposal_policy_get(proposal=proposal)
    if not can_review(acting_user, policy):
        raise PermissionDenied(
            NOT_A_REVIEWER.format(user=acting_user.username),
            code="not_a_reviewer",
            hint="reviewers: members of "
            + ", ".join(sorted({*policy.required_teams, governance_team()})),
        )
    if verdict == Review.Verdict.REQUEST_CHANGES and not body.strip():
        raise UserError("say which changes you request", code="no_message", location="body")
    review = Review.objects.create(
        proposal=proposal,
        reviewer=acting_user,
        verdict=verdict,
        body=body,
        revision=proposal.revision,
        certifies=verdict == Review.Verdict.APPROVE
        and bool(policy.certifies)
        and governance_team() in team_slugs_of(acting_user),
    )
    proposal.state = _state_after_reviews(proposal)
    proposal.save(update_fields=["state", "updated_at"])
    _audit(
        proposal,
        acting_user,
        "review",
        verdict=verdict,
        body=body,
        certifies=list(policy.certifies) if review.certifies else [],
    )
    _notify(proposal, "reviewed")
    return review


@transaction.atomic(durable=True)
def proposal_comment(
    *,
    proposal: Proposal,
    acting_user: Any,
    body: str,
    definition: str = "",
    field_path: str = "",
) -> Comment:
    """Adds a comment, optionally on one field (``definition`` = kind:name) of a change."""
    _require_user(acting_user)
    proposal = _lock(proposal)
    _require_state(proposal, (*UNMERGED, Proposal.State.CLOSED), "commented on")
    if not body.strip():
        raise UserError("a comment needs text", code="no_message", location="body")
    kind, _, name = definition.partition(":")
    if definition:
        names = {(c.kind, c.name) for c in proposal_changes(proposal=proposal)}
        if (kind, name) not in names:
            raise UserError(
                f"{definition!r} is not changed by this proposal",
                code="unknown_definition",
                location="definition",
                hint="changed: " + ", ".join(sorted(f"{k}:{n}" for k, n in names)),
            )
    elif field_path:
        raise UserError(
            "a field comment names its definition",
            code="no_definition",
            location="definition",
        )
    comment = Comment.objects.create(
        proposal=proposal,
        author=acting_user,
        body=body,
        revision=proposal.revision,
        definition_kind=kind,
        definition_name=name,
        field_path=field_path[:500],
    )
    _audit(proposal, acting_user, "comment", definition=definition, field_path=field_path)
    return comment


def _require_propose_in_domains(user: Any, proposal: Proposal) -> None:
    """Proposing needs the propose action in the domain of every changed definition (its new
    and its released one); a refusal rolls the whole write back."""
    from registry.permissions import access_require
    from registry.roles import Action

    access_require(user, Action.PROPOSE, obj=proposal)


def _may_manage(user: Any, proposal: Proposal) -> bool:
    return proposal.author_id == user.pk or can_review(user, proposal_policy_get(proposal=proposal))


@transaction.atomic(durable=True)
def proposal_close(*, proposal: Proposal, acting_user: Any, reason: str = "") -> Proposal:
    """Closes an unmerged proposal (author or a reviewer); it stays readable."""
    _require_user(acting_user)
    proposal = _lock(proposal)
    _require_state(proposal, UNMERGED, "closed")
    if not _may_manage(acting_user, proposal):
        raise PermissionDenied("only the author or a reviewer can close it", code="not_allowed")
    proposal.state = Proposal.State.CLOSED
    proposal.closed_at = timezone.now()
    proposal.save(update_fields=["state", "closed_at", "updated_at"])
    _audit(proposal, acting_user, "close", reason=reason)
    return proposal


@transaction.atomic(durable=True)
def proposal_rebase(*, proposal: Proposal, acting_user: Any) -> Proposal:
    """Moves the proposal onto the latest release, merging field by field what changed there.

    Raises:
        ConflictError: ``rebase_conflict`` with every conflicting field in ``details``;
            nothing changes.
    """
    _require_user(acting_user)
    proposal = _lock(proposal)
    _require_state(proposal, UNMERGED, "rebased")
    if not _may_manage(acting_user, proposal):
        raise PermissionDenied("only the author or a reviewer can rebase", code="not_allowed")
    latest = Release.objects.order_by("-number").first()
    if latest is None or proposal.base_release_id == latest.pk:
        return proposal
    changes = proposal_changes(proposal=proposal)
    keys = [(c.kind, c.name) for c in changes]
    base = release_specs(release=proposal.base_release, keys=keys)
    theirs_all = release_specs(release=latest, keys=keys)
    merged: list[ProposedDefinition] = []
    conflicts: list[dict[str, Any]] = []
    content_changed = False
    for change in changes:
        key = (change.kind, change.name)
        old, theirs = base.get(key), theirs_all.get(key)
        old_spec, their_spec = (old.spec if old else None), (theirs.spec if theirs else None)
        ours = change.spec
        if old_spec == their_spec or ours == their_spec:
            result = ours
        elif ours is None or old_spec is None or their_spec is None:
            # One side retired or added the whole definition: no field to merge.
            conflicts.append(
                {"definition": f"{change.kind}:{change.name}", "path": "(whole definition)"}
            )
            continue
        else:
            result, found = merge3(old_spec, their_spec, ours)
            conflicts.extend(
                {"definition": f"{change.kind}:{change.name}", **c.as_dict()} for c in found
            )
        content_changed |= result != ours
        if result is not None and their_spec is not None and result == their_spec:
            content_changed = True
            continue  # the release already says what we proposed
        merged.append(
            ProposedDefinition(
                change.kind, change.name, result, change.source_file, change.source_line
            )
        )
    if conflicts:
        first = conflicts[0]
        raise ConflictError(
            f"rebase onto {latest.name} conflicts in {len(conflicts)} field(s); first: "
            f"{first['definition']} {first['path']}",
            code="rebase_conflict",
            hint="edit the proposal so that it starts from the latest release, then rebase",
            location=f"{first['definition']}:{first['path']}",
            details=conflicts,
        )
    if not merged:
        raise ConflictError(
            f"{latest.name} already contains every change of proposal #{proposal.pk}",
            code="nothing_left",
            hint="close the proposal",
        )
    previous = proposal.base_release
    proposal.base_release = latest
    proposal.revision += 1
    if content_changed:
        _dismiss_reviews(proposal)
        if proposal.state != Proposal.State.DRAFT:
            proposal.state = Proposal.State.OPEN
    proposal.save(update_fields=["base_release", "revision", "state", "updated_at"])
    _write_changes(proposal, merged)
    _audit(
        proposal,
        acting_user,
        "rebase",
        onto=latest.name,
        previous=previous.name if previous else None,
        reviews_dismissed=content_changed,
    )
    if proposal.state != Proposal.State.DRAFT:
        _enqueue_checks(proposal)
    return proposal


def _merged_project(
    proposal: Proposal, changes: list[ProposalChange], head: dict[tuple[str, str], PinnedSpec]
) -> Project:
    """The latest release with the proposal laid over it, as a Project definitions_apply takes."""
    project = Project(root=f"proposal #{proposal.pk}")
    for (kind, name), pinned in head.items():
        project.objects[(kind, name)] = DefinitionObject(kind, name, pinned.spec, "", 0)
    for change in changes:
        key = (change.kind, change.name)
        if change.spec is None:
            project.objects.pop(key, None)
        else:
            project.objects[key] = DefinitionObject(
                change.kind,
                change.name,
                change.spec,
                change.source_file or f"proposal #{proposal.pk}",
                change.source_line,
            )
    return project


def _certifications(
    proposal: Proposal,
    changes: list[ProposalChange],
    head: dict[tuple[str, str], PinnedSpec],
) -> dict[tuple[str, str], tuple[int | None, Any]]:
    """(kind, name) → (certifier's user id, when) for each certified definition merged."""
    certifier = next(
        (
            r
            for r in reversed(current_reviews(proposal))
            if r.certifies and r.verdict == Review.Verdict.APPROVE
        ),
        None,
    )
    out: dict[tuple[str, str], tuple[int | None, Any]] = {}
    for change in changes:
        key = (change.kind, change.name)
        old = head.get(key)
        if change.spec is None:
            continue
        tier = ((change.spec.get("config") or {}).get("meta") or {}).get("tier")
        if tier != CERTIFIED:
            continue
        if needs_certification(change.kind, old, change.spec):
            if certifier is not None:
                out[key] = (certifier.reviewer_id, certifier.created_at)
        elif old is not None and old.certified_by_id is not None:
            # A minor edit keeps the certification of the meaning it does not change.
            out[key] = (old.certified_by_id, old.certified_at)
    return out


@transaction.atomic(durable=True)
def proposal_merge(*, proposal: Proposal | int, acting_user: Any) -> Proposal:
    """Merges an approved proposal as one new release (versions, deprecations, audit).

    Raises:
        ConflictError: the base release is stale or the proposal merged meanwhile (409).
        ReviewError: ``merge_blocked`` (checks or approvals) with every blocker in details.
    """
    _require_user(acting_user)
    # Lock order: release head, then proposal (every merge takes them in this order).
    head_release = release_head_lock()
    proposal = _lock(proposal)
    _require_state(proposal, REVIEWABLE, "merged")
    if not _may_manage(acting_user, proposal):
        raise PermissionDenied("only the author or a reviewer can merge", code="not_allowed")
    latest_id = head_release.pk if head_release else None
    if proposal.base_release_id != latest_id:
        raise ConflictError(
            STALE_BASE.format(
                id=proposal.pk,
                base=proposal.base_release.name if proposal.base_release else "nothing",
                latest=head_release.name if head_release else "nothing",
            ),
            code="stale_base",
            hint=f"rebase it: `tally rebase {proposal.pk}` or POST …/proposals/{proposal.pk}/rebase",
        )
    blockers = merge_blockers(proposal, latest_release_id=latest_id)
    if blockers:
        raise ReviewError(
            MERGE_BLOCKED.format(id=proposal.pk, first=blockers[0].message),
            code="merge_blocked",
            hint="; ".join(b.message for b in blockers[1:4]) or None,
            details=[b.as_dict() for b in blockers],
        )
    changes = proposal_changes(proposal=proposal)
    head = release_specs(release=head_release)
    result = definitions_apply_locked(
        project=_merged_project(proposal, changes, head),
        base=head_release,
        acting_user=acting_user,
        note=f"proposal #{proposal.pk}: {proposal.title}",
        source=Release.Source.PROPOSAL,
        certifications=_certifications(proposal, changes, head),
    )
    if result.release is None:
        raise ConflictError(
            f"proposal #{proposal.pk} changes nothing in {head_release}", code="nothing_left"
        )
    proposal.state = Proposal.State.MERGED
    proposal.merged_release = result.release
    proposal.merged_by = acting_user
    proposal.merged_at = timezone.now()
    proposal.save(update_fields=["state", "merged_release", "merged_by", "merged_at", "updated_at"])
    _audit(proposal, acting_user, "merge", release=result.release, changes=len(changes))
    _notify(proposal, "merged")
    return proposal


# --------------------------------------------------------------------------- reading helpers


def proposal_change_diffs(
    *,
    proposal: Proposal,
    changes: list[ProposalChange] | None = None,
    base: dict[tuple[str, str], PinnedSpec] | None = None,
) -> list[dict[str, Any]]:
    """Each change against the base release: action, bump level and field-by-field diff."""
    changes = changes if changes is not None else proposal_changes(proposal=proposal)
    if base is None:
        base = release_specs(
            release=proposal.base_release, keys=[(c.kind, c.name) for c in changes]
        )
    retired = set(
        Definition.objects.filter(
            status="retired", name__in=[c.name for c in changes if (c.kind, c.name) not in base]
        ).values_list("kind", "name")
    )
    out = []
    for change in changes:
        old = base.get((change.kind, change.name))
        if change.spec is None:
            action, level, fields = RETIRE, None, []
        elif old is None:
            action = RESTORE if (change.kind, change.name) in retired else ADD
            level, fields = None, []
        else:
            bump = classify_change(change.kind, old.spec, change.spec)
            action, level = CHANGE, bump.level
            fields = [c.as_dict() for c in diff_specs(old.spec, change.spec)]
        out.append(
            {
                "kind": change.kind,
                "name": change.name,
                "action": action,
                "level": level,
                "base_version": old.semver if old else None,
                "fields": fields,
                "spec": change.spec,
                "file": change.source_file,
                "line": change.source_line,
            }
        )
    return out


def proposal_overview(*, proposal: Proposal) -> dict[str, Any]:
    """Everything a reviewer reads on one page: diffs, checks, reviews, policy, blockers."""
    from registry.selectors import proposal_checks, proposal_comments, proposal_reviews

    changes = proposal_changes(proposal=proposal)
    base = release_specs(release=proposal.base_release, keys=[(c.kind, c.name) for c in changes])
    policy = proposal_policy_get(proposal=proposal, changes=changes, base=base)
    latest = Release.objects.order_by("-number").values_list("pk", flat=True).first()
    blockers = merge_blockers(proposal, latest_release_id=latest, policy=policy)
    return {
        "proposal": proposal,
        "changes": proposal_change_diffs(proposal=proposal, changes=changes, base=base),
        "checks": proposal_checks(proposal=proposal),
        "reviews": proposal_reviews(proposal=proposal),
        "comments": proposal_comments(proposal=proposal),
        "policy": policy.as_dict(),
        "blockers": [b.as_dict() for b in blockers],
        "mergeable": not blockers,
    }
