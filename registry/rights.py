"""Who may do what, one small function per decision (pages ask these to show a button; the
services still enforce their own rules when the button is pressed).

Today the answers come from team membership and the review policy
(registry/services/review_policy.py). When registry roles and permissions land, re-point
these functions and every page follows.
"""

from __future__ import annotations

from typing import Any

from registry.models import Proposal
from registry.services.review_policy import Policy, can_review, team_slugs_of

REVIEWABLE_STATES = (
    Proposal.State.OPEN,
    Proposal.State.CHANGES_REQUESTED,
    Proposal.State.APPROVED,
)
UNMERGED_STATES = (Proposal.State.DRAFT, *REVIEWABLE_STATES)


def may_propose(user: Any) -> bool:
    """Start a proposal (edit a definition): staff or a member of any team."""
    if not getattr(user, "is_authenticated", False):
        return False
    return bool(user.is_staff or team_slugs_of(user))


def may_review(user: Any, proposal: Proposal, policy: Policy) -> bool:
    """Approve or request changes: a reviewer the policy names, never the author."""
    if not getattr(user, "is_authenticated", False) or proposal.state not in REVIEWABLE_STATES:
        return False
    return proposal.author_id != user.pk and can_review(user, policy)


def may_merge(user: Any, proposal: Proposal, policy: Policy) -> bool:
    """Merge: the author or a reviewer, while the proposal is open (blockers are shown apart)."""
    if not getattr(user, "is_authenticated", False) or proposal.state not in REVIEWABLE_STATES:
        return False
    return proposal.author_id == user.pk or can_review(user, policy)


def may_close(user: Any, proposal: Proposal, policy: Policy) -> bool:
    """Close an unmerged proposal: the author or a reviewer."""
    if not getattr(user, "is_authenticated", False) or proposal.state not in UNMERGED_STATES:
        return False
    return proposal.author_id == user.pk or can_review(user, policy)


def may_open(user: Any, proposal: Proposal) -> bool:
    """Open a draft for review: its author."""
    return proposal.state == Proposal.State.DRAFT and proposal.author_id == getattr(
        user, "pk", None
    )


def may_comment(user: Any, proposal: Proposal) -> bool:
    """Comment: anyone signed in, on a proposal that is not merged."""
    return (
        bool(getattr(user, "is_authenticated", False)) and proposal.state != Proposal.State.MERGED
    )


def may_rerun_checks(user: Any, proposal: Proposal, policy: Policy) -> bool:
    """Re-run the checks (warehouse queries): the author or a reviewer, before a merge."""
    return may_close(user, proposal, policy)
