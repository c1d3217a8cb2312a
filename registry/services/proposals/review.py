"""Reviews, comments and closing: what reviewers and the author do to an unmerged proposal."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from registry.models import Comment, Proposal, Review
from registry.selectors import proposal_changes
from registry.services.proposals.base import (
    NOT_A_REVIEWER,
    REVIEWABLE,
    SELF_REVIEW,
    UNMERGED,
    proposal_audit,
    proposal_lock,
    proposal_may_manage,
    proposal_notify,
    proposal_require_state,
    require_signed_in,
)
from registry.services.review_policy import (
    approval_blockers,
    can_review,
    current_reviews,
    governance_team,
    proposal_policy_get,
    team_slugs_of,
)
from tally.errors import PermissionDenied, UserError


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
    require_signed_in(acting_user)
    proposal = proposal_lock(proposal)
    proposal_require_state(proposal, REVIEWABLE, "reviewed")
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
    proposal_audit(
        proposal,
        acting_user,
        "review",
        verdict=verdict,
        body=body,
        certifies=list(policy.certifies) if review.certifies else [],
    )
    proposal_notify(proposal, "reviewed")
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
    require_signed_in(acting_user)
    proposal = proposal_lock(proposal)
    proposal_require_state(proposal, (*UNMERGED, Proposal.State.CLOSED), "commented on")
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
    proposal_audit(proposal, acting_user, "comment", definition=definition, field_path=field_path)
    return comment


@transaction.atomic(durable=True)
def proposal_close(*, proposal: Proposal, acting_user: Any, reason: str = "") -> Proposal:
    """Closes an unmerged proposal (author or a reviewer); it stays readable."""
    require_signed_in(acting_user)
    proposal = proposal_lock(proposal)
    proposal_require_state(proposal, UNMERGED, "closed")
    if not proposal_may_manage(acting_user, proposal):
        raise PermissionDenied("only the author or a reviewer can close it", code="not_allowed")
    proposal.state = Proposal.State.CLOSED
    proposal.closed_at = timezone.now()
    proposal.save(update_fields=["state", "closed_at", "updated_at"])
    proposal_audit(proposal, acting_user, "close", reason=reason)
    return proposal
