"""New revisions of a proposal: the author's edit, and a rebase onto the latest release."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction

from registry.definitions.merge import merge3
from registry.models import Proposal, Release
from registry.selectors import proposal_changes, release_specs
from registry.services.proposals.base import (
    NO_CHANGES,
    UNMERGED,
    ProposedDefinition,
    changes_summary,
    proposal_audit,
    proposal_changes_write,
    proposal_checks_enqueue,
    proposal_lock,
    proposal_may_manage,
    proposal_require_state,
    require_propose_in_domains,
    require_signed_in,
    reviews_dismiss,
)
from registry.services.proposals.files import (
    only_real_changes,
    proposed_from_files,
    proposed_retirements,
)
from tally.errors import ConflictError, PermissionDenied, UserError


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
    require_signed_in(acting_user)
    proposal = proposal_lock(proposal)
    proposal_require_state(proposal, UNMERGED, "edited")
    if proposal.author_id != acting_user.pk:
        raise PermissionDenied(
            "only the author can edit a proposal", code="not_author", hint="comment instead"
        )
    new = (proposed_from_files(files) if files else []) + proposed_retirements(retire)
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
    items = only_real_changes(
        keep.values(), release_specs(release=proposal.base_release, keys=list(keep))
    )
    if not items:
        raise UserError(NO_CHANGES, code="no_changes")
    proposal.revision += 1
    reviews_dismiss(proposal)
    if proposal.state in (Proposal.State.APPROVED, Proposal.State.CHANGES_REQUESTED):
        proposal.state = Proposal.State.OPEN
    proposal.save(update_fields=["revision", "state", "updated_at"])
    proposal_changes_write(proposal, items)
    require_propose_in_domains(acting_user, proposal)
    proposal_audit(proposal, acting_user, "update", changes=changes_summary(items))
    if proposal.state != Proposal.State.DRAFT:
        proposal_checks_enqueue(proposal)
    return proposal


@transaction.atomic(durable=True)
def proposal_rebase(*, proposal: Proposal, acting_user: Any) -> Proposal:
    """Moves the proposal onto the latest release, merging field by field what changed there.

    Raises:
        ConflictError: ``rebase_conflict`` with every conflicting field in ``details``;
            nothing changes.
    """
    require_signed_in(acting_user)
    proposal = proposal_lock(proposal)
    proposal_require_state(proposal, UNMERGED, "rebased")
    if not proposal_may_manage(acting_user, proposal):
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
        reviews_dismiss(proposal)
        if proposal.state != Proposal.State.DRAFT:
            proposal.state = Proposal.State.OPEN
    proposal.save(update_fields=["base_release", "revision", "state", "updated_at"])
    proposal_changes_write(proposal, merged)
    proposal_audit(
        proposal,
        acting_user,
        "rebase",
        onto=latest.name,
        previous=previous.name if previous else None,
        reviews_dismissed=content_changed,
    )
    if proposal.state != Proposal.State.DRAFT:
        proposal_checks_enqueue(proposal)
    return proposal
