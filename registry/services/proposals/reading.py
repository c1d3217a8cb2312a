"""What a reviewer reads: each change against the base release, and the whole overview."""

from __future__ import annotations

from typing import Any

from registry.definitions.changes import classify_change, diff_specs
from registry.models import Definition, Proposal, ProposalChange, Release
from registry.selectors import PinnedSpec, proposal_changes, release_specs
from registry.services.definitions import ADD, CHANGE, RESTORE, RETIRE
from registry.services.review_policy import merge_blockers, proposal_policy_get


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
