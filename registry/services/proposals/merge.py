"""Merging an approved proposal as one new release."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from registry.definitions.project import DefinitionObject, Project
from registry.models import Proposal, ProposalChange, Release, Review
from registry.selectors import PinnedSpec, proposal_changes, release_specs
from registry.services.definitions import definitions_apply_locked, release_head_lock
from registry.services.proposals.base import (
    DECLASSIFICATION_BLOCKED,
    MERGE_BLOCKED,
    REVIEWABLE,
    STALE_BASE,
    proposal_audit,
    proposal_lock,
    proposal_may_manage,
    proposal_notify,
    proposal_require_state,
    require_signed_in,
)
from registry.services.review_policy import (
    CERTIFIED,
    DECLASSIFICATION_MISSING,
    current_reviews,
    merge_blockers,
    needs_certification,
)
from tally.errors import ConflictError, PermissionDenied, ReviewError


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
        ConflictError: ``declassification_unapproved`` (409): the proposal declassifies PII
            and the data owner's or data governance's approval is missing.
        ReviewError: ``merge_blocked`` (checks or approvals) with every blocker in details.
    """
    require_signed_in(acting_user)
    # Lock order: release head, then proposal (every merge takes them in this order).
    head_release = release_head_lock()
    proposal = proposal_lock(proposal)
    proposal_require_state(proposal, REVIEWABLE, "merged")
    if not proposal_may_manage(acting_user, proposal):
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
    declassifying = [b for b in blockers if b.code == DECLASSIFICATION_MISSING]
    if declassifying:
        raise ConflictError(
            DECLASSIFICATION_BLOCKED.format(
                id=proposal.pk, missing="; ".join(b.message for b in declassifying)
            ),
            code="declassification_unapproved",
            hint="a member of each team named must approve; declassifying PII needs both the "
            "data owner's and data governance's approval",
            details=[b.as_dict() for b in blockers],
        )
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
        version_author=proposal.author,  # the versions are the author's work, not the merger's
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
    proposal_audit(proposal, acting_user, "merge", release=result.release, changes=len(changes))
    proposal_notify(proposal, "merged")
    return proposal
